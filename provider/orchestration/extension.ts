// Joins, leaves and reads of a stretched segment (NetworkExtension). A change of membership touches every
// member: the network's host (its record of the members, its VXLAN device, FDB and filter), the extension's host
// and every other extension's host. Each host still gets one script of its own, through its own queue, lock,
// generation token and undo (round.ts). Every host is probed and planned before any of them changes, so bad
// input or a host that cannot take part fails the change with nothing done; then all hosts apply at once, and
// when one fails (its own script undone), the hosts that succeeded are planned back to the old membership.
// Changes of one segment run one after the other: each one reads the member list the last one left.
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import * as ipaddr from "ipaddr.js";
import { Host } from "../host/host";
import { NetworkSpec } from "../model/network";
import {
  ExtendedNetwork,
  ExtensionSpec,
  MemberRecord,
  segmentAddresses,
  SegmentMember,
  SegmentRecord,
} from "../model/networkExtension";
import {
  defaultVni,
  extensionBridgeMac,
  networkPaths,
  VXLAN_PORT,
  vxlanName,
  vxlanOverhead,
} from "../naming";
import { extensionOf, ObservedNetwork } from "../observe/observed";
import { planApply } from "../plan/network";
import { Plan } from "../plan/plan";
import { restoreGlobalActions } from "../plan/restore";
import { planMember, planMemberRemoval, underlayErrors } from "../plan/segment";
import { NetworkError } from "./errors";
import { observe } from "./probe";
import { ApplyResult, runChange } from "./round";

/** How one change reaches the members: the network's host, the extension's, and the others' by label. */
export interface SegmentHosts {
  home: Host;
  self: Host;
  /** Another member's host, or undefined when this process has no connection for it. */
  peer(label: string): Promise<Host | undefined>;
}

export interface SegmentResult {
  /** The extension's host as it now is. */
  member: MemberRecord;
  segment: SegmentRecord;
  warnings: string[];
}

/** The scope of an extension's changes: "extension <network>", as errors name it (errors.ts). */
export function extensionScope(network: string): string {
  return `extension ${network}`;
}

// One membership change of a segment at a time (in this process).
const segmentQueues = new Map<string, Promise<unknown>>();

function serialized<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const before = segmentQueues.get(key) ?? Promise.resolve();
  const mine = before.then(fn, fn);
  const settled = mine.then(
    () => undefined,
    () => undefined,
  );
  segmentQueues.set(key, settled);
  void settled.then(() => segmentQueues.get(key) === settled && segmentQueues.delete(key));
  return mine;
}

const segmentKey = (hosts: SegmentHosts, spec: ExtensionSpec) => `${hosts.home.label}/${spec.network.name}`;

/**
 * Reads a member host: its records of the segment, and the network's directories there, where the Ports on the
 * extension's bridge keep their records.
 */
function observeMember(host: Host, n: ExtendedNetwork, gateway = ""): Promise<ObservedNetwork> {
  return observe(host, extensionScope(n.name), n.bridge, gateway, {
    network: { name: n.name, bridge: n.bridge },
  });
}

/** What a member host is applied with, from the segment's record. */
function memberRecord(spec: ExtensionSpec, home: Host, s: SegmentRecord, m: SegmentMember): MemberRecord {
  const n = spec.network;
  return {
    network: n.name,
    extension: m.extension,
    home: home.label,
    bridge: n.bridge,
    bridgeMac: extensionBridgeMac(n.name, m.address),
    vxlan: vxlanName(n.name),
    vni: s.vni,
    port: s.port,
    mtu: s.mtu,
    local: m.address,
    peers: segmentAddresses(s).filter((a) => a !== m.address),
    ...(s.vlanFiltering ? { vlanFiltering: true as const } : {}),
  };
}

/** The network as its host records it, or an error: an extension needs its network there first. */
function recordedNetwork(spec: ExtensionSpec, home: Host, o: ObservedNetwork): NetworkSpec {
  const record = o.networks.find((n) => n.name === spec.network.name);
  if (!record?.spec)
    throw new NetworkError(
      home.label,
      spec.network.name,
      "check host",
      "the network does not exist on its host: create its VirtualNetwork first",
    );
  return record.spec as NetworkSpec;
}

/** The address of the probe's route lookup: where this host sends from towards the peer it looked up. */
function sourceAddress(o: ObservedNetwork): string | undefined {
  return o.route.gatewayLookup?.prefsrc;
}

function underlayMtu(o: ObservedNetwork): number {
  const dev = o.route.gatewayLookup?.dev;
  return o.links?.find((l) => l.name === dev)?.mtu ?? 1500;
}

/** The network's host's address as the extension's connection names it, for the first lookup of the way there. */
async function connectionAddress(networkId: string): Promise<string> {
  const host = networkId.replace(/:\d+\/[^/]+$/, "").replace(/^\[(.*)\]$/, "$1");
  return isIP(host) ? host : (await lookup(host)).address;
}

/** One host's part of a change: apply it, or go back to how it was. */
interface HostChange {
  host: Host;
  scope: string;
  apply: () => Promise<ApplyResult>;
  back: () => Promise<ApplyResult>;
}

/** The home host's change: its network converged with the segment `segment` (null: not stretched). */
function homeChange(
  spec: ExtensionSpec,
  home: Host,
  segment: SegmentRecord | null,
  old: SegmentRecord | null,
): HostChange {
  const n = spec.network;
  const paths = networkPaths(n.name);
  const converge = (s: SegmentRecord | null) => (o: ObservedNetwork) =>
    planApply(recordedNetwork(spec, home, o), o, paths, { segment: s });
  const change = (s: SegmentRecord | null) =>
    runChange(home, { name: n.name, bridge: n.bridge, makePlan: converge(s), undo: true });
  return { host: home, scope: n.name, apply: () => change(segment), back: () => change(old) };
}

/** A member host's change: applied with `want` (undefined: taken off), back to `was`. */
function memberChange(
  spec: ExtensionSpec,
  host: Host,
  want: MemberRecord | undefined,
  was: MemberRecord | undefined,
  homeAddress: string,
  failAfter?: string,
): HostChange {
  const n = spec.network;
  const plan = (m: MemberRecord | undefined) => (o: ObservedNetwork) =>
    m
      ? planMember(m, o, restoreGlobalActions(o, true), homeAddress)
      : planMemberRemoval(n.name, n.bridge, o, restoreGlobalActions(o, false));
  const change = (m: MemberRecord | undefined, fail?: string) =>
    runChange(host, {
      name: extensionScope(n.name),
      bridge: n.bridge,
      network: { name: n.name, bridge: n.bridge },
      gateway: m ? homeAddress : "",
      makePlan: plan(m),
      undo: m !== undefined,
      solo: true,
      ...(fail ? { failAfter: fail } : {}),
    });
  return {
    host,
    scope: extensionScope(n.name),
    apply: () => change(want, failAfter),
    back: () => change(was),
  };
}

/** Plans every host first: any error fails the change before anything runs. */
function checkPlans(plans: { host: Host; scope: string; plan: Plan }[]): string[] {
  const warnings: string[] = [];
  const errors = plans.filter((p) => p.plan.errors.length);
  for (const p of plans) warnings.push(...p.plan.warnings.map((w) => `host ${p.host.label}: ${w}`));
  if (errors.length) {
    const [first, ...rest] = errors;
    const more = rest.map((p) => `; host ${p.host.label}: ${p.plan.errors.join("; ")}`).join("");
    throw new NetworkError(first.host.label, first.scope, "check host", first.plan.errors.join("; ") + more);
  }
  return warnings;
}

/** Applies every host's part at once; when one fails, the hosts that succeeded go back. */
async function applyAll(changes: HostChange[]): Promise<void> {
  const results = await Promise.allSettled(changes.map((c) => c.apply()));
  const failed = results.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
  if (!failed.length) return;
  const done = changes.filter((_, i) => results[i].status === "fulfilled");
  const back = await Promise.allSettled(done.map((c) => c.back()));
  const notBack = back.flatMap((r, i) =>
    r.status === "rejected" ? [`${done[i].host.label}: ${r.reason}`] : [],
  );
  const e = failed[0];
  const others = done.length
    ? notBack.length
      ? `; putting the other hosts back failed too (${notBack.join("; ")})`
      : `; the other hosts (${done.map((c) => c.host.label).join(", ")}) were put back as they were`
    : "";
  if (e instanceof NetworkError) throw new NetworkError(e.hostLabel, e.network, e.step, e.detail + others);
  throw new Error(`${e instanceof Error ? e.message : String(e)}${others}`);
}

/** Other members, each with its host and how it is now; members this process cannot reach become warnings. */
async function reachPeers(
  hosts: SegmentHosts,
  spec: ExtensionSpec,
  members: SegmentMember[],
  homeAddress: string,
): Promise<{ peers: { m: SegmentMember; host: Host; o: ObservedNetwork }[]; warnings: string[] }> {
  const n = spec.network;
  const warnings: string[] = [];
  const found = await Promise.all(
    members.map(async (m) => {
      const host = await hosts.peer(m.host);
      if (!host)
        warnings.push(
          `extension "${m.extension}" on ${m.host} was not updated: no connection to it is known here (its own next up or refresh repairs it)`,
        );
      return host && { m, host, o: await observeMember(host, n, homeAddress) };
    }),
  );
  return { peers: found.filter((p) => p !== undefined), warnings };
}

/** Both ends of a join as probed: each host with the way to the other one, and the addresses in use. */
interface JoinView {
  netSpec: NetworkSpec;
  old?: SegmentRecord;
  homeObs: ObservedNetwork;
  selfObs: ObservedNetwork;
  /** The extension's underlay address, and the network host's. */
  local: string;
  homeLocal: string;
}

/**
 * Probes the network's host and the extension's, each with a route lookup of the other one: the address it
 * sends from (the default local addresses) and its underlay's MTU. The first time, the extension's way is looked
 * up towards the network host's connection address, then again towards its underlay address once known.
 */
async function lookBothWays(spec: ExtensionSpec, hosts: SegmentHosts): Promise<JoinView> {
  const { home, self } = hosts;
  const n = spec.network;
  const scope = extensionScope(n.name);
  let homeObs = await observe(home, n.name, n.bridge, spec.localAddress ?? "");
  const netSpec = recordedNetwork(spec, home, homeObs);
  const old = homeObs.segment?.members.length ? homeObs.segment : undefined;
  const towardsHome = old?.local ?? (spec.localAddress ? undefined : await connectionAddress(n.id));
  let selfObs = towardsHome === undefined ? undefined : await observeMember(self, n, towardsHome);
  const local = spec.localAddress ?? (selfObs && sourceAddress(selfObs));
  if (!local)
    throw new NetworkError(
      self.label,
      scope,
      "check host",
      `no route to the network's host (${towardsHome})`,
    );
  if (spec.localAddress === undefined) homeObs = await observe(home, n.name, n.bridge, local);
  const homeLocal = old?.local ?? sourceAddress(homeObs);
  if (!homeLocal)
    throw new NetworkError(home.label, n.name, "check host", `no route to the extension's address ${local}`);
  if (!selfObs || towardsHome !== homeLocal) selfObs = await observeMember(self, n, homeLocal);
  return { netSpec, ...(old ? { old } : {}), homeObs, selfObs, local, homeLocal };
}

/** The segment with the extension in it (its entry replaced when it is there already), or errors. */
function withMember(spec: ExtensionSpec, self: Host, v: JoinView, stack: string | undefined): SegmentRecord {
  const { old, local, homeLocal } = v;
  const n = spec.network;
  const errors: string[] = [];
  if (spec.vni !== undefined && old && spec.vni !== old.vni)
    errors.push(`vni ${spec.vni}: network "${n.name}" is stretched with VNI ${old.vni} already`);
  const family = ipaddr.parse(local).kind() as "ipv4" | "ipv6";
  if (ipaddr.parse(homeLocal).kind() !== family)
    errors.push(
      `localAddress ${local} and the network host's underlay address ${homeLocal} are of two IP families`,
    );
  const sameHost = old?.members.find((m) => m.host === self.label && m.extension !== spec.name);
  if (sameHost) errors.push(`network "${n.name}" already has extension "${sameHost.extension}" on this host`);
  if (errors.length)
    throw new NetworkError(self.label, extensionScope(n.name), "check host", errors.join("; "));
  const me: SegmentMember = { extension: spec.name, host: self.label, address: local };
  // The stack that declares the extension (kept from the record when the change does not say).
  const declaredBy = stack ?? old?.members.find((m) => m.extension === spec.name)?.stack;
  if (declaredBy !== undefined) me.stack = declaredBy;
  const stay = (old?.members ?? []).filter((m) => m.extension !== spec.name);
  const underlay = Math.min(underlayMtu(v.homeObs), underlayMtu(v.selfObs)) - vxlanOverhead(family);
  return {
    vni: spec.vni ?? old?.vni ?? defaultVni(n.id),
    port: VXLAN_PORT,
    mtu: old?.mtu ?? v.netSpec.bridge.mtu ?? underlay,
    local: homeLocal,
    members: [...stay, me].sort((a, b) => (a.extension < b.extension ? -1 : 1)),
    ...(v.netSpec.bridge.vlanFiltering ? { vlanFiltering: true as const } : {}),
  };
}

const recordOn = (network: string) => (o: ObservedNetwork) =>
  o.extensions?.find((e) => e.network === network);

/**
 * Makes the extension's host a member of the network's segment, or repairs its membership: every member's
 * forwarding database and filter, and the network host's record, are made to list it. Idempotent.
 */
export function joinSegment(
  spec: ExtensionSpec,
  hosts: SegmentHosts,
  opts: { failAfter?: string; stack?: string } = {},
): Promise<SegmentResult> {
  return serialized(segmentKey(hosts, spec), async () => {
    const { home, self } = hosts;
    const n = spec.network;
    const scope = extensionScope(n.name);
    const v = await lookBothWays(spec, hosts);
    const segment = withMember(spec, self, v, opts.stack);
    const stay = segment.members.filter((m) => m.extension !== spec.name);
    const { peers, warnings } = await reachPeers(hosts, spec, stay, v.homeLocal);
    const recordOf = (m: SegmentMember) => memberRecord(spec, home, segment, m);
    const mine = recordOf(segment.members.find((m) => m.extension === spec.name)!);
    const homePlan = planApply(v.netSpec, v.homeObs, networkPaths(n.name), { segment });
    warnings.push(
      ...checkPlans([
        {
          host: home,
          scope: n.name,
          plan: withErrors(homePlan, underlayErrors(v.homeObs, v.local, segment.mtu)),
        },
        {
          host: self,
          scope,
          plan: planMember(mine, v.selfObs, restoreGlobalActions(v.selfObs, true), v.homeLocal),
        },
        ...peers.map((p) => ({
          host: p.host,
          scope,
          plan: planMember(recordOf(p.m), p.o, restoreGlobalActions(p.o, true)),
        })),
      ]),
    );
    const before = recordOn(n.name);
    await applyAll([
      homeChange(spec, home, segment, v.old ?? null),
      memberChange(spec, self, mine, before(v.selfObs), v.homeLocal, opts.failAfter),
      ...peers.map((p) => memberChange(spec, p.host, recordOf(p.m), before(p.o), v.homeLocal)),
    ]);
    return { member: mine, segment, warnings };
  });
}

function withErrors(plan: Plan, errors: string[]): Plan {
  return errors.length ? { ...plan, errors: [...plan.errors, ...errors], actions: [] } : plan;
}

/**
 * Takes the extension's host out of the segment: its bridge, VXLAN device, filter and records go (and virtnet's
 * host-wide pieces when nothing else of virtnet is there), and every other member forgets it. Succeeds when it
 * is already gone.
 */
export function leaveSegment(spec: ExtensionSpec, hosts: SegmentHosts): Promise<{ warnings: string[] }> {
  return serialized(segmentKey(hosts, spec), async () => {
    const { home, self } = hosts;
    const n = spec.network;
    const scope = extensionScope(n.name);
    const [homeObs, selfObs] = await Promise.all([observe(home, n.name, n.bridge), observeMember(self, n)]);
    // The segment it leaves, as the network's host records it (none when the network or its entry is gone).
    const recorded = homeObs.networks.some((r) => r.name === n.name && r.spec) ? homeObs.segment : undefined;
    const old = recorded?.members.some((m) => m.extension === spec.name) ? recorded : undefined;
    const segment = old && { ...old, members: old.members.filter((m) => m.extension !== spec.name) };
    const { peers, warnings } = segment
      ? await reachPeers(hosts, spec, segment.members, segment.local)
      : { peers: [], warnings: [] };
    const recordOf = (m: SegmentMember) => memberRecord(spec, home, segment!, m);
    const plans = [
      {
        host: self,
        scope,
        plan: planMemberRemoval(n.name, n.bridge, selfObs, restoreGlobalActions(selfObs, false)),
      },
      ...peers.map((p) => ({
        host: p.host,
        scope,
        plan: planMember(recordOf(p.m), p.o, restoreGlobalActions(p.o, true)),
      })),
    ];
    if (segment) {
      const plan = planApply(recordedNetwork(spec, home, homeObs), homeObs, networkPaths(n.name), {
        segment,
      });
      plans.unshift({ host: home, scope: n.name, plan });
    }
    warnings.push(...checkPlans(plans));
    const before = recordOn(n.name);
    const homeAddress = old?.local ?? "";
    await applyAll([
      ...(segment ? [homeChange(spec, home, segment, old!)] : []),
      memberChange(spec, self, undefined, before(selfObs), homeAddress),
      ...peers.map((p) => memberChange(spec, p.host, recordOf(p.m), before(p.o), homeAddress)),
    ]);
    return { warnings };
  });
}

export interface ExtensionStatus {
  /** False when nothing of the extension is left on its host. */
  exists: boolean;
  /** What `up` would change: on the extension's host, and its place in the network host's record. */
  drift: string[];
  /** As the network's host records it (absent when it is not a member there). */
  member?: MemberRecord;
  segment?: SegmentRecord;
  observed: ObservedNetwork;
}

/** Reads the extension's host and its membership in the network host's record, read-only. */
export async function readExtension(spec: ExtensionSpec, hosts: SegmentHosts): Promise<ExtensionStatus> {
  const { home, self } = hosts;
  const n = spec.network;
  const homeObs = await observe(home, n.name, n.bridge);
  const segment = homeObs.segment?.members.length ? homeObs.segment : undefined;
  const me = segment?.members.find((m) => m.extension === spec.name);
  const selfObs = await observeMember(self, n);
  const recorded = extensionOf(selfObs, n.name);
  const vxlan = selfObs.links?.find((l) => l.name === vxlanName(n.name));
  const exists = recorded !== undefined || selfObs.bridge !== undefined || vxlan !== undefined;
  const member = me && segment ? memberRecord(spec, home, segment, me) : undefined;
  const want = member ?? recorded;
  const drift: string[] = [];
  if (!me) drift.push(`not a member of network "${n.name}" in its host's record`);
  if (want) {
    const plan = planMember(want, selfObs, restoreGlobalActions(selfObs, true));
    drift.push(...(plan.errors.length ? plan.errors : plan.actions.map((a) => a.name)));
  }
  return { exists, drift, ...(member ? { member } : {}), ...(segment ? { segment } : {}), observed: selfObs };
}
