// The pure planner: desired state + what the host has -> the actions that make them equal, each with its undo.
import * as ipaddr from "ipaddr.js";
import { quote } from "shell-quote";
import {
  bridgeAlias,
  FORWARDING_MARKERS,
  INOTIFY_MARKER,
  NetworkPaths,
  NETWORKS_RUN_DIR,
  NETWORKS_STATE_DIR,
  rangeRecordPath,
  RESTORE_ENTRY,
  SYSCTL,
  SYSTEMD_UNIT_NAME,
  SYSTEMD_UNIT_PATH,
  SYSTEMD_WANTS_LINK,
  NFT_FAMILY,
  NFT_TABLE,
  NFT_TABLE_REF,
  nftChainId,
  RUN_DIR,
  STATE_DIR,
} from "../naming";
import { needsDnsmasq, renderDhcpHosts, renderDnsmasqConf, renderHostsFile } from "../render/dnsmasq";
import { DhcpRangeSpec, rangeInside, rangeOverlaps } from "../model/dhcpRange";
import { removeStateDirAction, routesToRestore } from "./route";
import {
  renderNetworkRestore,
  renderRestoreEntry,
  RestoreFirewall,
  renderSystemdUnit,
} from "../render/restore";
import { bridgeTuning, renderBridgeCreate } from "../render/ip";
import { chooseFirewallBackend, firewallOf, ownFirewallActions, removeOwnFirewallActions } from "./firewall";
import { dockerUserFamilies, planForeignFirewalls, removeForeignFirewallActions } from "./foreignFirewalls";
import { modeForwards } from "../model/modes";
import { FirewallBackend, NetworkSpec } from "../model/network";
import { AppliedNetworkRecord, isOurDnsmasq, ObservedNetwork } from "./observe";

export interface Action {
  name: string;
  run: string; // shell text; every value in it is quoted
  undo?: string;
  /**
   * Changes host-wide state that other networks' plans read (virtnet's top directories, forwarding, the boot
   * restore entry, shared firewall chains): a plan with such an action comes first in its script, and others
   * join it only as lifecycle.ts allows.
   */
  shared?: boolean;
  /** Runs after every plan of its script (script.ts), e.g. to wait for the bridges' deletion. */
  atRoundEnd?: boolean;
  /**
   * The nft transaction `run` applies: a script of several plans applies theirs as one, at its end (script.ts).
   * Only for steps that no later step of the same plan depends on.
   */
  nft?: string;
  /**
   * Host-wide, but only takes away what the last network leaves (directories, forwarding, the nft table, the
   * restore entry): it may close a script of deletes, after every plan's own steps (lifecycle.ts).
   */
  hostTeardown?: boolean;
  /** A bridge the script deletes together with the other plans' bridges, from its start (script.ts). */
  deletesBridge?: string;
  /** The file `run` removes: next to each other, such steps share one rm (script.ts). */
  removes?: string;
  /**
   * A start that takes a while of its own (dnsmasq): a script of several plans runs it in the background and
   * learns at its end whether it worked, so the plans' starts overlap (script.ts). Only for steps that no later
   * step of the same plan depends on.
   */
  background?: boolean;
}

const shared = (a: Action): Action => ({ ...a, shared: true });

export interface Plan {
  errors: string[];
  warnings: string[];
  actions: Action[];
}

const sh = (...argv: string[]) => quote(argv);
const FILE_MODE = "0644";

export function appliedRecord(
  spec: NetworkSpec,
  backend: FirewallBackend = "nftables",
): AppliedNetworkRecord {
  const r: AppliedNetworkRecord = { name: spec.name, mode: spec.mode, bridge: spec.bridge.name };
  if (spec.ipv4) r.cidr = spec.ipv4.cidr;
  r.spec = spec;
  if (backend === "iptables") r.firewallBackend = backend;
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

function overlaps(a: string, b: string): boolean {
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

function dirActions(observed: ObservedNetwork, paths: NetworkPaths): Action[] {
  const wanted = [STATE_DIR, NETWORKS_STATE_DIR, paths.stateDir, RUN_DIR, NETWORKS_RUN_DIR, paths.runDir];
  const own = [paths.stateDir, paths.runDir];
  return wanted
    .filter((d) => !observed.dirs.includes(d))
    .map((d) => ({
      name: `create directory ${d}`,
      run: sh("make_dir", "0755", d),
      undo: sh("rmdir", d),
      ...(own.includes(d) ? {} : { shared: true }),
    }));
}

/** Removes a file virtnet wrote; the undo writes it back as it was. */
function removeFileAction(path: string, previous: string): Action {
  return {
    name: `remove ${path}`,
    run: sh("rm", "-f", path),
    undo: sh("write_file", path, FILE_MODE, previous),
    removes: path,
  };
}

export function writeFileAction(
  path: string,
  content: string,
  previous: string | undefined,
  then = "",
  mode = FILE_MODE,
): Action {
  const restore = previous === undefined ? sh("rm", "-f", path) : sh("write_file", path, mode, previous);
  return { name: `write ${path}`, run: sh("write_file", path, mode, content), undo: restore + then };
}

function bridgeActions(spec: NetworkSpec, observed: ObservedNetwork): Action[] {
  const b = observed.bridge;
  const name = spec.bridge.name;
  if (!b) {
    return [
      {
        name: "create bridge",
        run: `printf '%s\\n' ${quote(renderBridgeCreate(spec))} | ip -batch -`,
        undo: sh("ip", "link", "del", "dev", name),
      },
    ];
  }
  const actions: Action[] = [];
  const want = spec.bridge;
  if (b.stp !== want.stp || b.forwardDelay !== want.delay * 100) {
    actions.push({
      name: "tune bridge",
      run: `ip link set dev ${sh(name)} type bridge ${bridgeTuning(spec)}`,
      undo: `ip link set dev ${sh(name)} type bridge stp_state ${b.stp ? 1 : 0} forward_delay ${b.forwardDelay}`,
    });
  }
  if (b.mac !== want.macAddress)
    actions.push({
      name: "set bridge MAC address",
      run: sh("ip", "link", "set", "dev", name, "address", want.macAddress),
      undo: sh("ip", "link", "set", "dev", name, "address", b.mac),
    });
  if (want.mtu !== undefined && b.mtu !== want.mtu)
    actions.push({
      name: "set bridge MTU",
      run: sh("ip", "link", "set", "dev", name, "mtu", String(want.mtu)),
      undo: sh("ip", "link", "set", "dev", name, "mtu", String(b.mtu)),
    });
  const families: [string, string[], string[], string[]][] = [
    [
      "-4",
      spec.ipv4 ? [`${spec.ipv4.gateway}/${spec.ipv4.prefixLength}`] : [],
      observed.bridgeIpv4,
      ["broadcast", "+"],
    ],
    [
      "-6",
      spec.ipv6 ? [`${spec.ipv6.gateway}/${spec.ipv6.prefixLength}`] : [],
      observed.bridgeIpv6,
      ["nodad"],
    ],
  ];
  for (const [family, wantAddr, have, extra] of families) {
    for (const a of have)
      if (!wantAddr.includes(a))
        actions.push({
          name: `remove address ${a}`,
          run: sh("ip", family, "address", "del", a, "dev", name),
          undo: sh("ip", family, "address", "add", a, ...extra, "dev", name),
        });
    for (const a of wantAddr)
      if (!have.includes(a))
        actions.push({
          name: `add address ${a}`,
          run: sh("ip", family, "address", "add", a, ...extra, "dev", name),
          undo: sh("ip", family, "address", "del", a, "dev", name),
        });
  }
  if (!b.up)
    actions.push({
      name: "bring bridge up",
      run: sh("ip", "link", "set", "dev", name, "up"),
      undo: sh("ip", "link", "set", "dev", name, "down"),
    });
  return actions;
}

/** The network's own rules in its backend (see firewall.ts), then what Docker and firewalld need. */
function firewallActions(
  spec: NetworkSpec,
  observed: ObservedNetwork,
  backend: FirewallBackend,
  foreign: Action[],
): Action[] {
  return [...ownFirewallActions(spec, observed, backend), ...foreign.map(shared)];
}

function forwardingActions(spec: NetworkSpec, observed: ObservedNetwork): Action[] {
  if (!modeForwards(spec.mode)) return [];
  const actions: Action[] = [];
  const marker = FORWARDING_MARKERS.ipv4;
  if (!observed.ipForward)
    actions.push({
      name: "enable IPv4 forwarding",
      run: `sysctl -qw ${SYSCTL.ipv4Forwarding}=1 && : > ${sh(marker)}`,
      undo: `sysctl -qw ${SYSCTL.ipv4Forwarding}=0; rm -f ${sh(marker)}`,
    });
  const marker6 = FORWARDING_MARKERS.ipv6;
  if (spec.ipv6 && !observed.ip6Forward)
    actions.push({
      name: "enable IPv6 forwarding",
      run: `sysctl -qw ${SYSCTL.ipv6Forwarding}=1 && : > ${sh(marker6)}`,
      undo: `sysctl -qw ${SYSCTL.ipv6Forwarding}=0; rm -f ${sh(marker6)}`,
    });
  return actions;
}

/** inotify instances left to the rest of the host beyond virtnet's dnsmasqs; the kernel's default is 128. */
export const INOTIFY_RESERVE = 64;
/** The limit is raised in steps of this many: raising is a host-wide action, which plans alone. */
export const INOTIFY_STEP = 128;

/**
 * Each dnsmasq takes an inotify instance, and past fs.inotify.max_user_instances (128 by default) dnsmasq
 * refuses to start. With many networks virtnet raises the limit to cover its dnsmasqs plus INOTIFY_RESERVE,
 * rounded up to INOTIFY_STEP, and records the original value, which the last network's delete puts back.
 */
function inotifyActions(spec: NetworkSpec, ranges: DhcpRangeSpec[], observed: ObservedNetwork): Action[] {
  const i = observed.inotify;
  if (!i || !needsDnsmasq(spec, ranges)) return [];
  const needed = observed.networks.filter((n) => n.name !== spec.name).length + 1 + INOTIFY_RESERVE;
  if (i.limit >= needed) return [];
  const wanted = Math.ceil(needed / INOTIFY_STEP) * INOTIFY_STEP;
  const original = i.marker?.original ?? i.limit;
  const previous = i.marker ? `${i.marker.original} ${i.marker.raised}\n` : undefined;
  const marker = writeFileAction(INOTIFY_MARKER, `${original} ${wanted}\n`, previous);
  return [
    {
      name: `raise fs.inotify.max_user_instances to ${wanted}`,
      run: `sysctl -qw ${SYSCTL.inotifyInstances}=${wanted} && ${marker.run}`,
      undo: `sysctl -qw ${SYSCTL.inotifyInstances}=${i.limit}; ${marker.undo}`,
    },
  ];
}

/** The probe's dnsmasq as script.ts's dnsmasq_stop and dnsmasq_hup take it: pid and start time, if known. */
function probedDnsmasq(observed: ObservedNetwork): string {
  const d = observed.dnsmasq;
  return d?.start ? sh(String(d.pid), d.start) : "";
}

/** Stops the network's dnsmasq (the one the probe saw, if it is still that process). */
function stopDnsmasqAction(observed: ObservedNetwork): Action {
  return { name: "stop dnsmasq", run: `dnsmasq_stop ${probedDnsmasq(observed)}` };
}

function dnsmasqActions(
  spec: NetworkSpec,
  ranges: DhcpRangeSpec[],
  observed: ObservedNetwork,
  paths: NetworkPaths,
): Action[] {
  const running = isOurDnsmasq(observed, paths.dnsmasqConf);
  const stop = { ...stopDnsmasqAction(observed), undo: "dnsmasq_start" };
  // A restart: the stop only signals, the start waits for the old one to be gone.
  const restartStop = { ...stop, run: `dnsmasq_stop_begin ${probedDnsmasq(observed)}` };
  const start = { name: "start dnsmasq", run: "dnsmasq_start", undo: "dnsmasq_stop", background: true };
  // Files dnsmasq rereads on SIGHUP; a change to them never needs a restart, so leases and pid stay.
  // undefined: the file should not exist.
  const hotFiles: [string, string | undefined, string | undefined][] = [
    [paths.addnHosts, renderHostsFile(spec), observed.hosts],
    [paths.dhcpHosts, ranges.length ? renderDhcpHosts(ranges) : undefined, observed.dhcpHosts],
  ];
  const hotActions = (after: string) =>
    hotFiles
      .filter(([, want, prev]) => want !== prev)
      .map(([path, want, prev]) =>
        want === undefined ? removeFileAction(path, prev!) : writeFileAction(path, want, prev, after),
      );
  if (!needsDnsmasq(spec, ranges)) {
    const actions: Action[] = running ? [stop] : [];
    for (const [path, , prev] of [[paths.dnsmasqConf, undefined, observed.conf] as const, ...hotFiles])
      if (prev !== undefined) actions.push(removeFileAction(path, prev));
    return actions;
  }
  const conf = renderDnsmasqConf(spec, paths, ranges);
  const confChanged = conf !== observed.conf;
  if (running && !confChanged) {
    const actions = hotActions(" && dnsmasq_hup");
    if (actions.length)
      actions.push({ name: "reload dnsmasq", run: `dnsmasq_hup ${probedDnsmasq(observed)}` });
    return actions;
  }
  // Removals first: the running dnsmasq rereads those files only on SIGHUP, and they follow a range record's
  // removal (rangeRecordActions), so the two share one rm.
  const hot = hotActions("");
  const actions: Action[] = hot.filter((a) => a.removes);
  if (running) actions.push(restartStop); // the lease file stays: guests keep their addresses on renewal
  if (confChanged) actions.push(writeFileAction(paths.dnsmasqConf, conf, observed.conf));
  actions.push(...hot.filter((a) => !a.removes));
  actions.push(start);
  return actions;
}

/** With the last network, virtnet's nft table goes too, unless it holds chains that are not this network's. */
function removeNftTableActions(name: string, observed: ObservedNetwork): Action[] {
  const t = NFT_TABLE_REF;
  const fw = firewallOf(observed);
  if (!fw.virtnetTable) return [];
  // Chains of this network, and of networks the same script removes before it, are gone by then.
  const ids = [name, ...(observed.goneInRound ?? [])].map(nftChainId);
  const foreign = fw.nftChains.filter(
    (c) => c.startsWith(`${t} `) && !ids.some((id) => c.startsWith(`${t} ${id}.`)),
  );
  if (foreign.length) return [];
  return [{ name: `remove nft table ${t}`, run: sh("nft", "delete", "table", NFT_FAMILY, NFT_TABLE) }];
}

/**
 * Virtnet's boot-time pieces shared by all networks and routes: the entry point and, on systemd hosts, an
 * enabled unit. `keep`: something still needs them; otherwise they go, so a host is left as it was.
 */
export function restoreGlobalActions(observed: ObservedNetwork, keep: boolean): Action[] {
  const r = observed.restore;
  const actions: Action[] = [];
  if (keep) {
    const entry = renderRestoreEntry();
    if (r.entry !== entry) actions.push(writeFileAction(RESTORE_ENTRY, entry, r.entry, "", "0755"));
    if (r.systemd) {
      const unit = renderSystemdUnit();
      if (r.unit !== unit) actions.push(writeFileAction(SYSTEMD_UNIT_PATH, unit, r.unit));
      if (!r.unitEnabled && r.wantsDir)
        actions.push({
          name: `enable ${SYSTEMD_UNIT_NAME}`,
          run: sh("ln", "-sfn", SYSTEMD_UNIT_PATH, SYSTEMD_WANTS_LINK),
          undo: sh("rm", "-f", SYSTEMD_WANTS_LINK),
        });
    }
    return actions;
  }
  if (r.unitEnabled)
    actions.push({ name: `disable ${SYSTEMD_UNIT_NAME}`, run: sh("rm", "-f", SYSTEMD_WANTS_LINK) });
  if (r.unit !== undefined)
    actions.push({ name: `remove ${SYSTEMD_UNIT_PATH}`, run: sh("rm", "-f", SYSTEMD_UNIT_PATH) });
  if (r.entry !== undefined)
    actions.push({ name: `remove ${RESTORE_ENTRY}`, run: sh("rm", "-f", RESTORE_ENTRY) });
  return actions;
}

function networkRestoreActions(
  spec: NetworkSpec,
  ranges: DhcpRangeSpec[],
  observed: ObservedNetwork,
  paths: NetworkPaths,
  firewall: RestoreFirewall,
): Action[] {
  const want = spec.autostart === false ? undefined : renderNetworkRestore(spec, ranges, paths, firewall);
  const have = observed.restore.network;
  if (want === have) return [];
  if (want === undefined)
    return [
      {
        name: `remove ${paths.restoreScript}`,
        run: sh("rm", "-f", paths.restoreScript),
        undo: sh("write_file", paths.restoreScript, FILE_MODE, have!),
      },
    ];
  return [writeFileAction(paths.restoreScript, want, have)];
}

function rangeErrors(spec: NetworkSpec, ranges: DhcpRangeSpec[]): string[] {
  const errors: string[] = [];
  for (const r of ranges) {
    const subnet = (r.family ?? 4) === 4 ? spec.ipv4?.cidr : spec.ipv6?.cidr;
    if (!subnet) errors.push(`DHCP range "${r.name}" needs an IPv${r.family ?? 4} subnet on the network`);
    else if (!rangeInside(r, subnet))
      errors.push(
        `DHCP range "${r.name}" (${r.start}-${r.end}) is outside the subnet ${subnet}: change or delete it first`,
      );
  }
  for (let i = 0; i < ranges.length; i++)
    for (let j = i + 1; j < ranges.length; j++)
      if (rangeOverlaps(ranges[i], ranges[j]))
        errors.push(`DHCP range "${ranges[i].name}" overlaps range "${ranges[j].name}" of the same network`);
  return errors;
}

function rangeRecordActions(
  network: string,
  ranges: DhcpRangeSpec[],
  observed: ObservedNetwork,
  paths: NetworkPaths,
): Action[] {
  const actions: Action[] = [];
  if (ranges.length && !observed.dirs.includes(paths.rangesDir))
    actions.push({
      name: `create directory ${paths.rangesDir}`,
      run: sh("make_dir", "0755", paths.rangesDir),
      undo: sh("rmdir", paths.rangesDir),
    });
  for (const r of ranges) {
    const prev = observed.ranges.find((o) => o.name === r.name);
    const text = JSON.stringify(r) + "\n";
    const prevText = prev ? JSON.stringify(prev) + "\n" : undefined;
    if (text !== prevText) actions.push(writeFileAction(rangeRecordPath(network, r.name), text, prevText));
  }
  for (const o of observed.ranges)
    if (!ranges.some((r) => r.name === o.name)) {
      actions.push(removeFileAction(rangeRecordPath(network, o.name), JSON.stringify(o) + "\n"));
    }
  return actions;
}

/** Actions that make the host match `spec`, or errors when the host forbids it. Empty when in sync. */
export function planApply(
  spec: NetworkSpec,
  observed: ObservedNetwork,
  paths: NetworkPaths,
  options: { ranges?: DhcpRangeSpec[] } = {},
): Plan {
  const ranges = options.ranges ?? observed.ranges;
  const firewall = chooseFirewallBackend(spec, observed);
  const foreign = planForeignFirewalls(spec, observed);
  const errors = [
    ...hostConflicts(spec, observed),
    ...rangeErrors(spec, ranges),
    ...(firewall.error ? [firewall.error] : []),
    ...foreign.errors,
  ];
  const warnings = foreign.warnings;
  if (errors.length) return { errors, warnings, actions: [] };
  const backend = firewall.backend;
  const restoreFirewall = { backend, dockerUser: dockerUserFamilies(spec, observed) };
  const record = JSON.stringify(appliedRecord(spec, backend)) + "\n";
  const prevRecord = observed.networks.find((n) => n.name === spec.name);
  const prevRecordText = prevRecord ? JSON.stringify(prevRecord) + "\n" : undefined;
  const actions = [
    ...dirActions(observed, paths),
    ...bridgeActions(spec, observed),
    ...routesToRestore(spec.bridge.name, observed.route),
    ...firewallActions(spec, observed, backend, foreign.actions),
    ...forwardingActions(spec, observed).map(shared),
    ...inotifyActions(spec, ranges, observed).map(shared),
    ...rangeRecordActions(spec.name, ranges, observed, paths),
    ...dnsmasqActions(spec, ranges, observed, paths),
    ...networkRestoreActions(spec, ranges, observed, paths, restoreFirewall),
    ...restoreGlobalActions(observed, true).map(shared),
  ];
  if (record !== prevRecordText) actions.push(writeFileAction(paths.appliedSpec, record, prevRecordText));
  return { errors, warnings, actions };
}

/** Actions that remove a network and everything virtnet made for it; idempotent, so no undo. */
export function planDelete(
  name: string,
  bridge: string,
  observed: ObservedNetwork,
  paths: NetworkPaths,
): Plan {
  const actions: Action[] = [];
  const warnings: string[] = [];
  if (isOurDnsmasq(observed, paths.dnsmasqConf)) actions.push(stopDnsmasqAction(observed));
  actions.push(...removeForeignFirewallActions(name, bridge, observed).map(shared));
  let deleting = false;
  if (observed.bridge) {
    if (observed.bridge.alias === bridgeAlias(name)) {
      // Deleted from the start of the script, with the bridges of the other deletes in the same script, while
      // the rules and files go; the step after the round checks that it is gone.
      actions.push({ name: "delete bridge", run: ":", deletesBridge: bridge });
      deleting = true;
    } else
      warnings.push(
        `interface ${bridge} is not virtnet's (alias "${observed.bridge.alias ?? ""}"): left alone`,
      );
  }
  actions.push(...removeOwnFirewallActions(name, observed));
  // The per-network directories hold only virtnet's files; names are validated, so they are never "" or "..".
  const dirs = [paths.stateDir, paths.runDir].filter((d) => observed.dirs.includes(d));
  if (dirs.length) actions.push({ name: "remove files", run: `rm -rf -- ${quote(dirs)}` });
  if (deleting)
    actions.push({ name: "bridge deleted", run: `bridge_deleted ${sh(bridge)}`, atRoundEnd: true });
  const perNetwork = actions.length;
  const others = observed.networks.filter((n) => n.name !== name);
  // Remove virtnet's top directories when this was the last network, so the host is as it was before.
  if (others.length === 0) {
    const top = [NETWORKS_STATE_DIR, NETWORKS_RUN_DIR, RUN_DIR].filter((d) => observed.dirs.includes(d));
    if (top.length)
      actions.push({ name: "remove virtnet directories", run: `rmdir ${quote(top)} 2>/dev/null; :` });
  }
  if (observed.forwardMarker && !others.some((n) => modeForwards(n.mode))) {
    actions.push({
      name: "restore IPv4 forwarding",
      run: `sysctl -qw ${SYSCTL.ipv4Forwarding}=0 && rm -f ${sh(FORWARDING_MARKERS.ipv4)}`,
    });
  }
  const othersWithIpv6 = others.some(
    (n) => modeForwards(n.mode) && (n.spec as NetworkSpec | undefined)?.ipv6,
  );
  if (observed.forward6Marker && !othersWithIpv6) {
    actions.push({
      name: "restore IPv6 forwarding",
      run: `sysctl -qw ${SYSCTL.ipv6Forwarding}=0 && rm -f ${sh(FORWARDING_MARKERS.ipv6)}`,
    });
  }
  const inotify = observed.inotify;
  if (others.length === 0 && inotify?.marker) {
    // Put the original back, unless someone changed the limit since virtnet raised it.
    const back =
      inotify.limit === inotify.marker.raised
        ? `sysctl -qw ${SYSCTL.inotifyInstances}=${inotify.marker.original} && `
        : "";
    actions.push({
      name: "restore fs.inotify.max_user_instances",
      run: `${back}rm -f ${sh(INOTIFY_MARKER)}`,
    });
  }
  if (others.length === 0) actions.push(...removeNftTableActions(name, observed));
  if (others.length === 0 && observed.route.records.length === 0)
    actions.push(...restoreGlobalActions(observed, false));
  if (others.length === 0 && observed.route.records.length === 0 && observed.dirs.includes(STATE_DIR))
    actions.push(removeStateDirAction());
  // Everything after the network's own pieces is host-wide: top directories, forwarding, the restore entry.
  return {
    errors: [],
    warnings,
    actions: [
      ...actions.slice(0, perNetwork),
      ...actions.slice(perNetwork).map((a) => ({ ...a, shared: true, hostTeardown: true })),
    ],
  };
}
