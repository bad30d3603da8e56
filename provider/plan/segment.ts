// The pure planner of stretched segments (NetworkExtension): what one member host needs, from its record and
// what the probe saw. On the network's own host the segment is part of the network's plan (network.ts calls
// segmentHomePlan); on an extension host it is a plan of its own (planMember, planMemberRemoval).
import * as ipaddr from "ipaddr.js";
import { MemberRecord, SegmentRecord } from "../model/networkExtension";
import {
  extensionBridgeAlias,
  EXTENSIONS_DIR,
  extensionPaths,
  NFT_FAMILY,
  NFT_TABLE,
  NFT_TABLE_REF,
  nftSegmentChain,
  portAlias,
  STATE_DIR,
  VXLAN_ALIAS_MARK,
  vxlanAlias,
  vxlanName,
  vxlanOverhead,
} from "../naming";
import { extensionOf, FdbEntry, firewallOf, KernelVlanRange, ObservedNetwork } from "../observe/observed";
import { Action } from "../ops/action";
import * as ops from "../ops/ops";
import {
  renderExtensionBridgeCreate,
  renderVxlanCreate,
  segmentTrunkLine,
  TRUNK_VLANS,
  vlanFilteringArgs,
  VxlanDevice,
} from "../render/ip";
import { nftSegmentScript, renderSegmentFilter, segmentFilterOf } from "../render/nftables";
import { memberDevice, renderExtensionRestore } from "../render/restore";
import { Plan, refused } from "./plan";
import { extensionPortDirs } from "./port";

/** The all-zeros MAC: an entry with it sends every flooded frame (broadcast, unknown unicast) to its dst. */
const ZERO_MAC = "00:00:00:00:00:00";

const linksOf = (o: ObservedNetwork) => o.links ?? [];
const linkNamed = (o: ObservedNetwork, name: string) => linksOf(o).find((l) => l.name === name);
const link = (dev: string, ...args: string[]) => ["link", "set", "dev", dev, ...args];

/** Errors about the host's own interfaces: the device's name, its VNI and its local address; and nft. */
function vxlanErrors(d: VxlanDevice, network: string, o: ObservedNetwork): string[] {
  const errors: string[] = [];
  const own = linkNamed(o, d.name);
  if (own && own.alias !== vxlanAlias(network))
    errors.push(
      `interface ${d.name} already exists and is not virtnet's VXLAN device of network "${network}"`,
    );
  for (const l of linksOf(o)) {
    if (l.name === d.name || !l.vxlan || l.vxlan.vni !== d.vni || l.vxlan.port !== d.port) continue;
    errors.push(
      l.alias?.startsWith(VXLAN_ALIAS_MARK)
        ? `VNI ${d.vni} is already used by virtnet's segment of network "${l.alias.slice(VXLAN_ALIAS_MARK.length)}" (${l.name}): set vni`
        : `VNI ${d.vni} is used by VXLAN device ${l.name}, which virtnet did not make: set another vni`,
    );
  }
  if (!linksOf(o).some((l) => l.addresses.includes(d.local)))
    errors.push(`underlay address ${d.local} is not an address of this host`);
  if (!firewallOf(o).tools.includes("nft"))
    errors.push(`command "nft" is not installed: a segment's members filter VXLAN with nftables`);
  return errors;
}

/**
 * Errors about the way from this host to `peer` over the underlay, from the probe's route lookup of it: no
 * route, or an underlay MTU with no room for `mtu` plus VXLAN's overhead.
 */
export function underlayErrors(o: ObservedNetwork, peer: string, mtu: number): string[] {
  const lookup = o.route.gatewayLookup;
  if (!lookup) return [];
  if (!lookup.dev) return [`no route to ${peer}, the segment's member: the underlay does not reach it`];
  const dev = linkNamed(o, lookup.dev);
  const overhead = vxlanOverhead(ipaddr.parse(peer).kind() as "ipv4" | "ipv6");
  if (dev && dev.mtu - overhead < mtu)
    return [
      `MTU ${mtu} leaves no room for VXLAN's ${overhead} bytes: ${lookup.dev}, the way to ${peer}, has MTU ${dev.mtu} (at most ${dev.mtu - overhead})`,
    ];
  return [];
}

function createVxlan(d: VxlanDevice): Action {
  const lines = [...renderVxlanCreate(d), `link set dev ${d.name} up`];
  return ops.ipBatch(`create VXLAN device ${d.name}`, lines, ["link", "del", "dev", d.name]);
}

function fdbDelete(dev: string, e: FdbEntry): Action {
  const args = [e.mac, "dev", dev, "dst", e.dst];
  if (!e.permanent) return ops.bridgeFdbForget(`forget learned FDB entry ${e.mac} ${e.dst}`, args);
  const what = e.mac === ZERO_MAC ? e.dst : `${e.mac} ${e.dst}`;
  return ops.bridgeFdb(`remove FDB entry ${what}`, ["del", ...args], ["append", ...args]);
}

/** Whether a port's VLANs include every one of TRUNK_VLANS, tagged. */
function carriesTrunk(ranges: KernelVlanRange[]): boolean {
  let covered = 0;
  for (const r of ranges) {
    if (r.untagged) continue;
    const from = Math.max(r.id, TRUNK_VLANS.first);
    const to = Math.min(r.end, TRUNK_VLANS.last);
    if (to >= from) covered += to - from + 1;
  }
  return covered === TRUNK_VLANS.last - TRUNK_VLANS.first + 1;
}

/** The device, its forwarding database towards `peers`, and the segment's filter: what every member has. */
function vxlanActions(d: VxlanDevice, network: string, peers: string[], o: ObservedNetwork): Action[] {
  const have = linkNamed(o, d.name);
  const v = have?.vxlan;
  const fresh = !have || !v || v.vni !== d.vni || v.port !== d.port || v.local !== d.local || !v.learning;
  const actions: Action[] = [];
  // A device whose identity changed is made anew (its FDB goes with it).
  if (have && fresh) actions.push(ops.ip(`delete VXLAN device ${d.name}`, ["link", "del", "dev", d.name]));
  if (fresh) actions.push(createVxlan(d));
  else {
    if (have.mtu !== d.mtu)
      actions.push(
        ops.ip(
          `set MTU of ${d.name}`,
          link(d.name, "mtu", String(d.mtu)),
          link(d.name, "mtu", String(have.mtu)),
        ),
      );
    if (have.master !== d.bridge)
      actions.push(
        ops.ip(
          `attach ${d.name} to ${d.bridge}`,
          link(d.name, "master", d.bridge),
          have.master ? link(d.name, "master", have.master) : link(d.name, "nomaster"),
        ),
      );
    if (!have.up) actions.push(ops.ip(`bring ${d.name} up`, link(d.name, "up"), link(d.name, "down")));
  }
  const entries = fresh ? [] : (o.fdb?.[d.name] ?? []);
  for (const e of entries) if (!peers.includes(e.dst)) actions.push(fdbDelete(d.name, e));
  for (const p of peers)
    if (!entries.some((e) => e.permanent && e.mac === ZERO_MAC && e.dst === p)) {
      const args = [ZERO_MAC, "dev", d.name, "dst", p];
      actions.push(ops.bridgeFdb(`add FDB entry ${p}`, ["append", ...args], ["del", ...args]));
    }
  if (d.trunk && (fresh || !carriesTrunk(o.vxlanVlans?.[d.name] ?? [])))
    actions.push(
      ops.bridgeBatch(
        `carry VLANs ${TRUNK_VLANS.first}-${TRUNK_VLANS.last} on ${d.name}`,
        [segmentTrunkLine(d.name)],
        [segmentTrunkLine(d.name, true)],
      ),
    );
  return [...actions, ...segmentFilterActions(network, d.vni, d.port, peers, o)];
}

function segmentFilterActions(
  network: string,
  vni: number,
  port: number,
  peers: string[],
  o: ObservedNetwork,
): Action[] {
  const want = renderSegmentFilter(network, vni, port, peers);
  const have = segmentFilterOf(o.nftTableListing, network);
  if ((want ?? undefined) === have) return [];
  const table = want && !firewallOf(o).virtnetTable ? [ops.nftAddTable(NFT_FAMILY, NFT_TABLE)] : [];
  const filter = ops.nftApply(
    want ? "apply segment filter" : "remove segment filter",
    nftSegmentScript(network, want),
    nftSegmentScript(network, have ?? null),
  );
  return [...table, filter];
}

/** Removes a network's VXLAN device and filter from a member (no undo: a delete, or its plan undoes it). */
function vxlanRemoval(network: string, o: ObservedNetwork): Action[] {
  const actions: Action[] = [];
  const dev = vxlanName(network);
  if (linkNamed(o, dev)?.alias === vxlanAlias(network))
    actions.push(ops.ip(`delete VXLAN device ${dev}`, ["link", "del", "dev", dev]));
  const have = segmentFilterOf(o.nftTableListing, network);
  if (have) actions.push(ops.nftApply("remove segment filter", nftSegmentScript(network, null), ""));
  return actions.map(({ undo: _undo, ...a }) => a);
}

/** The network's VXLAN device on its own host. */
export function homeDevice(network: string, bridge: string, s: SegmentRecord): VxlanDevice {
  return {
    name: vxlanName(network),
    vni: s.vni,
    port: s.port,
    local: s.local,
    mtu: s.mtu,
    alias: vxlanAlias(network),
    bridge,
    ...(s.vlanFiltering ? { trunk: true } : {}),
  };
}

/**
 * The segment's part of the network's plan on its own host: errors, and the device, its forwarding database
 * and filter (or their removal when the segment has no member). `bridge`: the network's own (its mtu and vlanFiltering as set).
 */
export function segmentHomePlan(
  network: string,
  bridge: { name: string; mtu?: number; vlanFiltering?: boolean },
  segment: SegmentRecord | undefined,
  o: ObservedNetwork,
): { errors: string[]; actions: Action[] } {
  if (!segment) return { errors: [], actions: vxlanRemoval(network, o) };
  const d = homeDevice(network, bridge.name, segment);
  const errors = vxlanErrors(d, network, o);
  if (bridge.mtu !== undefined && bridge.mtu !== segment.mtu)
    errors.push(
      `bridge.mtu ${bridge.mtu}: the network is stretched over VXLAN with MTU ${segment.mtu}; remove its NetworkExtensions to change it`,
    );
  // The extension hosts' bridges were made as the network's was: a change would leave them behind.
  if (!!bridge.vlanFiltering !== !!segment.vlanFiltering)
    errors.push(
      `bridge.vlanFiltering ${!!bridge.vlanFiltering}: the network is stretched over VXLAN with vlanFiltering ${!!segment.vlanFiltering}; remove its NetworkExtensions to change it`,
    );
  if (errors.length) return { errors, actions: [] };
  return {
    errors,
    actions: vxlanActions(
      d,
      network,
      segment.members.map((m) => m.address),
      o,
    ),
  };
}

/** Errors that make a host no place for this extension: it holds the network itself, or another extension of it. */
function memberHostErrors(want: MemberRecord, o: ObservedNetwork): string[] {
  const errors: string[] = [];
  if (o.networks.some((n) => n.name === want.network))
    errors.push(
      `this host has virtnet network "${want.network}" itself: an extension joins the network from another host`,
    );
  const other = extensionOf(o, want.network);
  if (other && other.extension !== want.extension)
    errors.push(
      `network "${want.network}" already has extension "${other.extension}" on this host (one per host)`,
    );
  const b = o.bridge;
  if (b && b.alias !== extensionBridgeAlias(want.network))
    errors.push(
      b.alias?.startsWith("virtnet:")
        ? `bridge ${want.bridge} belongs to virtnet network "${b.alias.slice(8)}"`
        : `interface ${want.bridge} already exists and is not this extension's bridge`,
    );
  else if (b && b.kind !== "bridge") errors.push(`interface ${want.bridge} exists and is not a bridge`);
  return errors;
}

function bridgeActions(want: MemberRecord, o: ObservedNetwork): Action[] {
  const b = o.bridge;
  const name = want.bridge;
  const filtering = !!want.vlanFiltering;
  if (!b) {
    const spec = {
      name,
      mac: want.bridgeMac,
      mtu: want.mtu,
      alias: extensionBridgeAlias(want.network),
      vlanFiltering: filtering,
    };
    return [
      ops.ipBatch(`create bridge ${name}`, renderExtensionBridgeCreate(spec), ["link", "del", "dev", name]),
      ops.ipv6Off(`turn IPv6 off on ${name}`, name),
      ops.ip(`bring ${name} up`, link(name, "up"), link(name, "down")),
    ];
  }
  const actions: Action[] = [];
  if (b.mtu !== want.mtu)
    actions.push(
      ops.ip(`set MTU of ${name}`, link(name, "mtu", String(want.mtu)), link(name, "mtu", String(b.mtu))),
    );
  if (!!b.vlanFiltering !== filtering)
    actions.push(
      ops.ip(
        filtering ? `turn VLAN filtering on on ${name}` : `turn VLAN filtering off on ${name}`,
        link(name, "type", "bridge", ...vlanFilteringArgs(filtering)),
        link(name, "type", "bridge", ...vlanFilteringArgs(!filtering)),
      ),
    );
  if (!b.up) actions.push(ops.ip(`bring ${name} up`, link(name, "up"), link(name, "down")));
  return actions;
}

/**
 * Makes an extension host match its record: bridge, VXLAN device and FDB, filter, record and restore script.
 * `bootRestore`: virtnet's boot-time pieces (restore.ts restoreGlobalActions); `peer`: the address the probe
 * looked up the way to (the network's host), checked for a route and for room for the MTU.
 */
export function planMember(
  want: MemberRecord,
  o: ObservedNetwork,
  bootRestore: Action[],
  peer?: string,
): Plan {
  const d = memberDevice(want);
  const errors = [
    ...memberHostErrors(want, o),
    ...vxlanErrors(d, want.network, o),
    ...(peer ? underlayErrors(o, peer, want.mtu) : []),
  ];
  if (errors.length) return refused(errors);
  const paths = extensionPaths(want.network);
  const prev = extensionOf(o, want.network);
  const text = JSON.stringify(want) + "\n";
  const prevText = prev ? JSON.stringify(prev) + "\n" : undefined;
  const restore = renderExtensionRestore(want);
  const prevRestore = o.extensionRestores?.[want.network];
  const actions = [
    ...[STATE_DIR, EXTENSIONS_DIR].filter((dir) => !o.dirs.includes(dir)).map(ops.makeDir),
    ...bridgeActions(want, o),
    ...vxlanActions(d, want.network, want.peers, o),
    ...(restore !== prevRestore ? [ops.writeFile(paths.restore, restore, prevRestore)] : []),
    ...(text !== prevText ? [ops.writeFile(paths.record, text, prevText)] : []),
    ...bootRestore,
  ];
  return { errors: [], warnings: [], actions };
}

/** The Ports of `network` on this host's bridge: their records, and TAPs of virtnet's on the bridge. */
function portsOnExtension(network: string, bridge: string, o: ObservedNetwork): string[] {
  const taps = linksOf(o).filter((l) => l.master === bridge && l.alias === portAlias(network));
  return [...new Set([...(o.ports ?? []).map((p) => p.name), ...taps.map((l) => l.name)])].sort();
}

/**
 * Takes an extension off its host: what it made, and virtnet's host-wide pieces when it was the last thing of
 * virtnet's there (`bootRestore`: the removal of the boot-time pieces). Succeeds when already gone.
 */
export function planMemberRemoval(
  network: string,
  bridge: string,
  o: ObservedNetwork,
  bootRestore: Action[],
): Plan {
  // A Port's TAP would be left on no bridge, its VM cut off: the Ports go first.
  const ports = portsOnExtension(network, bridge, o);
  if (ports.length)
    return refused([
      `Port${ports.length > 1 ? "s" : ""} ${ports.join(", ")} of network "${network}" ${ports.length > 1 ? "are" : "is"} on ${bridge} on this host: delete ${ports.length > 1 ? "them" : "it"} first`,
    ]);
  const warnings: string[] = [];
  const actions = vxlanRemoval(network, o);
  const record = extensionOf(o, network);
  if (o.bridge?.alias === extensionBridgeAlias(network))
    actions.push(ops.ip(`delete bridge ${bridge}`, ["link", "del", "dev", bridge]));
  else if (o.bridge && record)
    warnings.push(
      `interface ${bridge} is not this extension's (alias "${o.bridge.alias ?? ""}"): left alone`,
    );
  const paths = extensionPaths(network);
  const files = [
    ...(record ? [paths.record] : []),
    ...(o.extensionRestores?.[network] !== undefined ? [paths.restore] : []),
  ];
  if (files.length) actions.push(ops.discardFiles(`remove ${paths.record}`, ...files));
  // The network's directories its Ports had here (Ports deleted in one round leave them to the extension).
  const portDirs = extensionPortDirs(network)
    .reverse()
    .filter((d) => o.dirs.includes(d));
  if (portDirs.length && !o.networks.some((n) => n.name === network))
    actions.push(ops.removeEmptyDirs(`remove directory ${portDirs.join(", ")}`, portDirs));
  const othersLeft = (o.extensions ?? []).some((e) => e.network !== network);
  if (!othersLeft && o.dirs.includes(EXTENSIONS_DIR))
    actions.push(ops.removeEmptyDirs(`remove directory ${EXTENSIONS_DIR}`, [EXTENSIONS_DIR]));
  // The last of virtnet on this host: its host-wide pieces go too, so the host is as it was found.
  const nothingLeft = !othersLeft && o.networks.length === 0 && o.route.records.length === 0;
  if (nothingLeft && actions.length) {
    const fw = firewallOf(o);
    const mine = `${NFT_TABLE_REF} ${nftSegmentChain(network)}`;
    if (fw.virtnetTable && fw.nftChains.every((c) => !c.startsWith(`${NFT_TABLE_REF} `) || c === mine))
      actions.push(ops.nftDeleteTable(NFT_FAMILY, NFT_TABLE));
    actions.push(...bootRestore);
    if (o.dirs.includes(STATE_DIR)) actions.push(ops.removeStateDir());
  }
  return { errors: [], warnings, actions };
}
