// The pure planner of a Port: a persistent TAP on its network's bridge, on the network's own host or on the
// bridge of one of its NetworkExtensions. Created whole when missing; otherwise changed in place (bridge, MTU,
// MAC, isolation, VLANs), so a VM holding the TAP stays attached.
import { modeUsesExistingBridge } from "../model/modes";
import { NetworkSpec } from "../model/network";
import { PortSpec } from "../model/port";
import {
  networkPaths,
  NETWORKS_STATE_DIR,
  PORT_ALIAS_PREFIX,
  portAlias,
  portRecordPath,
  portRestorePath,
  portsDir,
  tapMac,
} from "../naming";
import { extensionOf, ObservedNetwork, ObservedPort, recordOf } from "../observe/observed";
import { Action } from "../ops/action";
import * as ops from "../ops/ops";
import {
  describeVlans,
  isolationLine,
  kernelVlansOf,
  renderPortCreate,
  renderPortRestore,
  vlanChange,
} from "../render/port";
import { Plan, refused } from "./plan";
import { restoreGlobalActions } from "./restore";

/**
 * The MTU of a network's ports on its own host: its bridge's MTU as set, else the kernel's default (also when
 * the network is stretched: guests are told the segment's MTU by DHCP, and a Port made before or after an
 * extension stays the same).
 */
export function portMtu(network: NetworkSpec | undefined): number {
  return network?.bridge.mtu ?? 1500;
}

/**
 * The bridge a Port goes on, as this host has it: the network's own (its host), or the bridge of the network's
 * NetworkExtension (an extension host: the segment's MTU, no restore switch of its own).
 */
interface PortHome {
  mtu: number;
  filtering: boolean;
  /** Whether the Port comes back at boot. */
  restores: boolean;
  /** On an extension host, the network's directories are the Ports' alone: made and removed with them. */
  extension: boolean;
  /** A mode "bridge" network: the bridge is the host's (a HostBridge), VLAN-aware as the host has it. */
  existingBridge?: boolean;
}

function portHome(network: string, o: ObservedNetwork): PortHome | undefined {
  const spec = recordOf(o, network)?.spec as NetworkSpec | undefined;
  if (spec && modeUsesExistingBridge(spec.mode))
    return {
      mtu: portMtu(spec),
      filtering: !!o.bridge?.vlanFiltering,
      restores: spec.autostart !== false,
      extension: false,
      existingBridge: true,
    };
  if (spec)
    return {
      mtu: portMtu(spec),
      filtering: !!spec.bridge.vlanFiltering,
      restores: spec.autostart !== false,
      extension: false,
    };
  const member = extensionOf(o, network);
  if (member) return { mtu: member.mtu, filtering: !!member.vlanFiltering, restores: true, extension: true };
  return undefined;
}

/** The directories an extension host's Ports live in, outermost first. */
export function extensionPortDirs(network: string): string[] {
  return [NETWORKS_STATE_DIR, networkPaths(network).stateDir, portsDir(network)];
}

/** Why the TAP named by `spec` cannot be the Port's, or undefined. */
function ownershipError(tap: string, network: string, port: ObservedPort | undefined): string | undefined {
  if (!port || port.alias === portAlias(network)) {
    if (port && (port.kind !== "tun" || port.tunType !== "tap"))
      return `interface ${tap} is not a TAP (it is a ${port.kind})`;
    return undefined;
  }
  if (port.alias?.startsWith(PORT_ALIAS_PREFIX))
    return `TAP ${tap} is virtnet's Port on network "${port.alias.slice(PORT_ALIAS_PREFIX.length)}": choose another name`;
  return `interface ${tap} already exists and is not virtnet's; choose another name`;
}

/** Problems only the host reveals, found before anything changes. */
function hostErrors(spec: PortSpec, o: ObservedNetwork, home: PortHome | undefined): string[] {
  const errors: string[] = [];
  if (!home) {
    errors.push(
      `network "${spec.network}" does not exist on this host: create its VirtualNetwork (or a NetworkExtension of it) first`,
    );
    return errors;
  }
  if (!o.bridge)
    errors.push(
      `bridge ${spec.bridge} of network "${spec.network}" is missing: run up for the ${home.extension ? "NetworkExtension" : "network"}`,
    );
  if (spec.vlan && !home.filtering && home.existingBridge)
    errors.push(
      `bridge ${spec.bridge} of network "${spec.network}" is not VLAN-aware: turn vlanFiltering on for its HostBridge (or vlan_filtering in the host's own bridge configuration) to give its ports VLANs`,
    );
  else if (spec.vlan && !home.filtering)
    errors.push(
      `network "${spec.network}" is not VLAN-aware: set bridge.vlanFiltering on it to give its ports VLANs`,
    );
  if (spec.owner !== undefined && o.portOwnerUid === null)
    errors.push(`owner "${spec.owner}" does not exist on the host`);
  const owned = ownershipError(spec.name, spec.network, o.port);
  if (owned) errors.push(owned);
  return errors;
}

/** Whether a process holds the TAP open (a VM), and what the host shows of it. */
function heldBy(port: ObservedPort): string | undefined {
  if (!port.carrier && !port.holders.length) return undefined;
  const who = port.holders.map((h) => `${h.command || "?"} (pid ${h.pid})`).join(", ");
  return who || "a process in another pid namespace";
}

/**
 * Why the TAP cannot go now: a VM holds it. Deleted under it, the VM would keep a file that reaches no device,
 * and QEMU polls such a file without end (half a core here): so virtnet waits for it to let go.
 */
function heldError(tap: string, port: ObservedPort, why: string): string | undefined {
  const who = heldBy(port);
  return who && `TAP ${tap} is held open by ${who}: stop it (or remove its NIC) first, then ${why}`;
}

/** The TAP as it must be made anew: missing, or with an owner or queues a TAP cannot change. */
function mustRecreate(spec: PortSpec, port: ObservedPort, ownerUid: number | null | undefined): boolean {
  const wantUid = spec.owner === undefined ? null : (ownerUid ?? null);
  return port.ownerUid !== wantUid || port.multiQueue !== spec.multiQueue;
}

/**
 * The steps that make the Port's TAP on a host match `spec`; errors when the host forbids it. Its record names
 * `stack`, the stack that declares it (kept from the record when not given).
 */
export function planPort(spec: PortSpec, o: ObservedNetwork, stack?: string): Plan {
  const home = portHome(spec.network, o);
  const errors = hostErrors(spec, o, home);
  if (errors.length) return refused(errors);
  const tap = spec.name;
  const { mtu, filtering } = home!;
  const want = kernelVlansOf(spec.vlan);
  const actions: Action[] = [];
  const dirs = home!.extension ? extensionPortDirs(spec.network) : [portsDir(spec.network)];
  for (const dir of dirs) if (!o.dirs.includes(dir)) actions.push(ops.ensureDir(dir));
  let have = o.port;
  if (have && mustRecreate(spec, have, o.portOwnerUid)) {
    const held = heldError(tap, have, "run up again: its owner or queues can change only with a new TAP");
    if (held) return refused([held]);
    const old = renderPortCreate(
      {
        ...spec,
        owner: have.ownerUid === null ? undefined : String(have.ownerUid),
        multiQueue: have.multiQueue,
        isolated: have.isolated,
      },
      have.mtu,
    );
    actions.push(ops.linkDelete(`remove TAP ${tap} (its owner or queues are not the Port's)`, tap, old));
    have = undefined;
  }
  if (!have) {
    const missing = (o.ports ?? []).some((p) => p.name === tap) ? " (it is missing)" : "";
    actions.push(
      ops.ipBatch(`create TAP ${tap}${missing}`, renderPortCreate(spec, mtu), ["link", "del", "dev", tap]),
    );
    const vlans = filtering ? vlanChange(tap, want, kernelVlansOf(undefined)).run : [];
    if (vlans.length) actions.push(ops.bridgeBatch(`set VLANs of ${tap}: ${describeVlans(want)}`, vlans));
  } else actions.push(...inPlace(spec, have, mtu, filtering));
  actions.push(...recordActions(spec, o, mtu, filtering, home!.restores, stack));
  if (actions.length) actions.push(...restoreGlobalActions(o, true));
  return { errors: [], warnings: [], actions };
}

/** The existing TAP's changes, each with its undo: it stays, and so does a VM that holds it. */
function inPlace(spec: PortSpec, have: ObservedPort, mtu: number, filtering: boolean): Action[] {
  const tap = spec.name;
  const set = (...args: string[]) => ["link", "set", "dev", tap, ...args];
  const actions: Action[] = [];
  let isolated = have.isolated;
  let vlans = have.vlans;
  if (have.master !== spec.bridge) {
    actions.push(
      ops.ip(
        `attach TAP ${tap} to bridge ${spec.bridge} (it is on ${have.master ?? "none"})`,
        set("master", spec.bridge),
        have.master ? set("master", have.master) : set("nomaster"),
      ),
    );
    // A port the bridge takes anew has the bridge's defaults.
    isolated = false;
    vlans = kernelVlansOf(undefined);
  }
  if (have.mtu !== mtu)
    actions.push(
      ops.ip(`set TAP ${tap} MTU to ${mtu}`, set("mtu", String(mtu)), set("mtu", String(have.mtu))),
    );
  const mac = tapMac(spec.macAddress);
  if (have.mac !== mac)
    actions.push(
      ops.ip(`set TAP ${tap} MAC address to ${mac}`, set("address", mac), set("address", have.mac)),
    );
  if (isolated !== spec.isolated) {
    const line = (on: boolean) => isolationLine(tap, on).split(" ");
    actions.push(
      ops.ip(
        `${spec.isolated ? "isolate" : "stop isolating"} TAP ${tap}`,
        line(spec.isolated),
        line(isolated),
      ),
    );
  }
  if (filtering) {
    const want = kernelVlansOf(spec.vlan);
    const change = vlanChange(tap, want, vlans);
    if (change.run.length)
      actions.push(
        ops.bridgeBatch(
          `set VLANs of ${tap}: ${describeVlans(want)} (it has ${describeVlans(vlans)})`,
          change.run,
          change.undo,
        ),
      );
  }
  if (!have.up) actions.push(ops.ip(`bring TAP ${tap} up`, set("up"), set("down")));
  return actions;
}

/** The Port's record and, for a network that comes back at boot, its restore file. */
function recordActions(
  spec: PortSpec,
  o: ObservedNetwork,
  mtu: number,
  filtering: boolean,
  restores: boolean,
  stack: string | undefined,
): Action[] {
  const actions: Action[] = [];
  const recorded = (o.ports ?? []).find((p) => p.name === spec.name);
  const declaredBy = stack ?? recorded?.stack;
  const text = JSON.stringify(declaredBy === undefined ? spec : { ...spec, stack: declaredBy }) + "\n";
  const prev = recorded ? JSON.stringify(recorded) + "\n" : undefined;
  if (text !== prev) actions.push(ops.writeFile(portRecordPath(spec.network, spec.name), text, prev));
  const restorePath = portRestorePath(spec.network, spec.name);
  const restore = restores ? renderPortRestore(spec, mtu, filtering) : undefined;
  if (restore !== o.portRestore) {
    if (restore === undefined) actions.push(ops.removeFile(restorePath, o.portRestore!));
    else actions.push(ops.writeFile(restorePath, restore, o.portRestore));
  }
  return actions;
}

/**
 * Removes the Port's TAP and records. A TAP a VM still holds open is refused, naming the process when the host
 * shows it (see heldError): nothing changes, and the delete goes through once the VM lets go. Idempotent, so
 * no undo.
 */
export function planPortDelete(tap: string, network: string, o: ObservedNetwork): Plan {
  const actions: Action[] = [];
  const warnings: string[] = [];
  const p = o.port;
  if (p && p.alias === portAlias(network)) {
    const held = heldError(tap, p, "delete the Port again");
    if (held) return refused([held]);
    actions.push(ops.linkDelete(`delete TAP ${tap}`, tap));
  } else if (p) warnings.push(`interface ${tap} is not virtnet's Port on network "${network}": left alone`);
  const records = o.ports ?? [];
  if (records.some((r) => r.name === tap) || o.portRestore !== undefined)
    actions.push(
      ops.discardFiles(
        `remove ${portRecordPath(network, tap)}`,
        portRecordPath(network, tap),
        portRestorePath(network, tap),
      ),
    );
  if (o.dirs.includes(portsDir(network)) && records.every((r) => r.name === tap)) {
    // On an extension host the network's directories were made for its Ports: the last one takes them along.
    const dirs = recordOf(o, network) ? [portsDir(network)] : extensionPortDirs(network).reverse();
    const present = dirs.filter((d) => o.dirs.includes(d));
    actions.push(ops.removeEmptyDirs(`remove directory ${present.join(", ")}`, present));
  }
  return { errors: [], warnings, actions };
}
