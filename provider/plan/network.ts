// The pure planner of a network: desired state + what the host has -> the actions that make them equal, each
// with its undo. Each part of the network has its planner beside this one; they state intent through ops.
import * as ipaddr from "ipaddr.js";
import { DhcpRangeSpec } from "../model/dhcpRange";
import { SegmentRecord } from "../model/networkExtension";
import { modeUsesExistingBridge } from "../model/modes";
import { FirewallBackend, NetworkSpec } from "../model/network";
import { bridgeAlias, NetworkPaths, NFT_FAMILY, NFT_TABLE } from "../naming";
import { AppliedNetworkRecord, firewallOf, ObservedNetwork, Recorded } from "../observe/observed";
import { Action } from "../ops/action";
import * as ops from "../ops/ops";
import { bridgeActions } from "./bridge";
import { dependantsRefusal } from "./dependants";
import { planExistingBridge } from "./existingBridge";
import { dnsmasqActions, stopDnsmasqActions } from "./dnsmasq";
import { chooseFirewallBackend, ownFirewallActions, removeOwnFirewallActions } from "./firewall";
import { dockerUserFamilies, planForeignFirewalls, removeForeignFirewallActions } from "./foreignFirewalls";
import { dirActions, forwardingActions, hostTeardownActions, inotifyActions } from "./hostState";
import { Plan, refused } from "./plan";
import { rangeErrors, rangeRecordActions } from "./range";
import { networkRestoreActions, restoreGlobalActions } from "./restore";
import { routesToRestore } from "./route";
import { segmentHomePlan } from "./segment";
import { vlanUplinkActions, vlanUplinkDeleteActions, vlanUplinkErrors } from "./vlanUplink";

export function appliedRecord(
  spec: NetworkSpec,
  backend: FirewallBackend = "nftables",
  stack?: string,
): AppliedNetworkRecord {
  const r: AppliedNetworkRecord = { name: spec.name, mode: spec.mode, bridge: spec.bridge.name };
  if (spec.ipv4) r.cidr = spec.ipv4.cidr;
  r.spec = spec;
  if (backend === "iptables") r.firewallBackend = backend;
  if (stack !== undefined) r.stack = stack;
  return r;
}

// A round's plans compare each new subnet with every subnet on the host (n x n at 200 networks): parse each once.
const parsedPrefixes = new Map<string, [ipaddr.IPv4 | ipaddr.IPv6, number]>();
function parsePrefix(cidr: string): [ipaddr.IPv4 | ipaddr.IPv6, number] {
  let p = parsedPrefixes.get(cidr);
  if (!p) {
    if (parsedPrefixes.size >= 4096) parsedPrefixes.clear();
    parsedPrefixes.set(cidr, (p = ipaddr.parseCIDR(cidr)));
  }
  return p;
}

/** Whether two CIDRs of one family share an address. */
export function overlaps(a: string, b: string): boolean {
  const [na, pa] = parsePrefix(a);
  const [nb, pb] = parsePrefix(b);
  if (na.kind() !== nb.kind()) return false;
  return pa <= pb ? nb.match(na, pa) : na.match(nb, pb);
}

/** Problems only the host can reveal; found before anything changes. */
function hostConflicts(spec: NetworkSpec, observed: ObservedNetwork): string[] {
  const errors = observed.missing.map((m) =>
    m.startsWith("missing-user")
      ? `user "dnsmasq" does not exist (install Debian's dnsmasq-base, which creates it)`
      : `command "${m.split(" ")[1]}" is not installed`,
  );
  const b = observed.bridge;
  if (b && b.alias !== bridgeAlias(spec.name)) {
    errors.push(
      b.alias?.startsWith("virtnet:")
        ? `bridge ${spec.bridge.name} belongs to virtnet network "${b.alias.slice(8)}"`
        : `interface ${spec.bridge.name} already exists and is not managed by virtnet; choose another bridge.name`,
    );
  } else if (b && b.kind !== "bridge")
    errors.push(`interface ${spec.bridge.name} exists and is not a bridge`);
  for (const other of observed.networks) {
    if (other.name === spec.name) continue;
    if (other.bridge === spec.bridge.name)
      errors.push(`bridge ${spec.bridge.name} is already used by virtnet network "${other.name}"`);
    if (spec.ipv4 && other.cidr && overlaps(spec.ipv4.cidr, other.cidr))
      errors.push(`subnet ${spec.ipv4.cidr} overlaps virtnet network "${other.name}" (${other.cidr})`);
  }
  const links = observed.links;
  if (spec.forwardDevice && links && !links.some((l) => l.name === spec.forwardDevice)) {
    const names = links.map((l) => l.name).filter((n) => n !== "lo");
    errors.push(
      `forwardDevice ${spec.forwardDevice} does not exist on this host (its interfaces: ${names.join(", ")})`,
    );
  }
  if (spec.ipv4) {
    const ownDevs = new Set(observed.networks.filter((n) => n.name !== spec.name).map((n) => n.bridge));
    for (const f of observed.foreignIpv4) {
      if (ownDevs.has(f.dev)) continue; // reported above as a virtnet network
      if (overlaps(spec.ipv4.cidr, f.cidr)) {
        errors.push(`subnet ${spec.ipv4.cidr} overlaps ${f.cidr} on ${f.dev}`);
        break;
      }
    }
  }
  return errors;
}

/** The segment's record on the network's host: written while the segment has members, removed after. */
function segmentRecordActions(
  segment: SegmentRecord | undefined,
  observed: ObservedNetwork,
  paths: NetworkPaths,
): Action[] {
  const want = segment ? JSON.stringify(segment) + "\n" : undefined;
  const have = observed.segment ? JSON.stringify(observed.segment) + "\n" : undefined;
  if (want === have) return [];
  return [want ? ops.writeFile(paths.segment, want, have) : ops.removeFile(paths.segment, have!)];
}

/**
 * Actions that make the host match `spec`, or errors when the host forbids it. Empty when in sync. `ranges`
 * and `segment` (the network stretched over VXLAN to other hosts; null: not stretched) default to what the
 * host records; so does `stack`, the stack that owns the network (given by the network's own apply).
 */
export function planApply(
  spec: NetworkSpec,
  observed: ObservedNetwork,
  paths: NetworkPaths,
  options: { ranges?: Recorded<DhcpRangeSpec>[]; segment?: SegmentRecord | null; stack?: string } = {},
): Plan {
  const prevRecord = observed.networks.find((n) => n.name === spec.name);
  const stack = options.stack ?? prevRecord?.stack;
  if (modeUsesExistingBridge(spec.mode))
    return planExistingBridge(
      spec,
      observed,
      paths,
      JSON.stringify(appliedRecord(spec, "nftables", stack)) + "\n",
    );
  const ranges = options.ranges ?? observed.ranges;
  const wanted = options.segment === undefined ? observed.segment : options.segment;
  const segment = wanted?.members.length ? wanted : undefined;
  const firewall = chooseFirewallBackend(spec, observed);
  const foreign = planForeignFirewalls(spec, observed);
  const ownFirewall = ownFirewallActions(spec, observed, firewall.backend);
  // The segment's filter goes in virtnet's table: made by the network's own rules when they are new.
  const tableComing = ownFirewall.some((a) => a.name === ops.nftAddTable(NFT_FAMILY, NFT_TABLE).name);
  const seen = tableComing
    ? { ...observed, firewall: { ...firewallOf(observed), virtnetTable: true } }
    : observed;
  const stretch = segmentHomePlan(spec.name, spec.bridge, segment, seen);
  const errors = [
    ...hostConflicts(spec, observed),
    ...rangeErrors(spec, ranges),
    ...(spec.tftp && observed.tftpRootFound === false
      ? [`tftp.root ${spec.tftp.root} is not a directory on the host: make it first`]
      : []),
    ...vlanUplinkErrors(spec, observed),
    ...(firewall.error ? [firewall.error] : []),
    ...foreign.errors,
    ...stretch.errors,
  ];
  const warnings = foreign.warnings;
  if (errors.length) return refused(errors, warnings);
  const backend = firewall.backend;
  const restoreFirewall = { backend, dockerUser: dockerUserFamilies(spec, observed) };
  const record = JSON.stringify(appliedRecord(spec, backend, stack)) + "\n";
  const prevRecordText = prevRecord ? JSON.stringify(prevRecord) + "\n" : undefined;
  const actions = [
    ...dirActions(observed, paths),
    ...bridgeActions(spec, observed),
    ...vlanUplinkActions(spec, observed),
    ...routesToRestore(spec.bridge.name, observed.route),
    // The network's own rules in its backend, then what Docker and firewalld need.
    ...ownFirewall,
    ...foreign.actions,
    // Its VXLAN device, forwarding database and filter when it is stretched to other hosts.
    ...stretch.actions,
    ...forwardingActions(spec, observed),
    ...inotifyActions(spec, ranges, observed),
    ...rangeRecordActions(spec.name, ranges, observed, paths),
    ...segmentRecordActions(segment, observed, paths),
    ...dnsmasqActions(spec, ranges, observed, paths, segment?.mtu),
    ...networkRestoreActions(spec, ranges, observed, paths, restoreFirewall, segment),
    ...restoreGlobalActions(observed, true),
  ];
  if (record !== prevRecordText) actions.push(ops.writeFile(paths.appliedSpec, record, prevRecordText));
  return { errors, warnings, actions };
}

/**
 * Actions that remove a network and everything virtnet made for it; idempotent, so no undo. Refused while
 * another stack than `stack` (the deleting one; else the one the network's record names) has dependants on it.
 */
export function planDelete(
  name: string,
  bridge: string,
  observed: ObservedNetwork,
  paths: NetworkPaths,
  stack?: string,
): Plan {
  const recorded = observed.networks.find((n) => n.name === name);
  const refusal = dependantsRefusal(name, bridge, observed, stack ?? recorded?.stack);
  if (refusal) return refused([refusal]);
  const actions: Action[] = [...stopDnsmasqActions(observed, paths)];
  const warnings: string[] = [];
  actions.push(...removeForeignFirewallActions(name, bridge, observed));
  let deleting = false;
  // A mode "bridge" network's bridge is the host's: it stays.
  if (observed.bridge && !(recorded && modeUsesExistingBridge(recorded.mode))) {
    if (observed.bridge.alias === bridgeAlias(name)) {
      // Deleted from the start of the script, with the bridges of the other deletes in the same script, while
      // the rules and files go; the step after the round checks that it is gone.
      actions.push(ops.bridgeDelete(bridge));
      deleting = true;
    } else
      warnings.push(
        `interface ${bridge} is not virtnet's (alias "${observed.bridge.alias ?? ""}"): left alone`,
      );
  }
  actions.push(...vlanUplinkDeleteActions(name, observed));
  actions.push(...removeOwnFirewallActions(name, observed));
  // Its VXLAN device and filter, when it was stretched to other hosts.
  actions.push(...segmentHomePlan(name, { name: bridge }, undefined, observed).actions);
  // The per-network directories hold only virtnet's files.
  const dirs = [paths.stateDir, paths.runDir].filter((d) => observed.dirs.includes(d));
  if (dirs.length) actions.push(ops.removeTrees("remove files", dirs));
  if (deleting) actions.push(ops.bridgeDeleted(bridge));
  actions.push(...hostTeardownActions(name, observed));
  return { errors: [], warnings, actions };
}
