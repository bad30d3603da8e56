// What virtnet keeps host-wide, beside any one network: its top directories, forwarding, the inotify limit, the
// shared nft table. The first network makes them, the last one takes them away.
import { DhcpRangeSpec } from "../model/dhcpRange";
import { modeForwards } from "../model/modes";
import { NetworkSpec, routesTraffic } from "../model/network";
import {
  FORWARDING_MARKERS,
  HOST_BRIDGES_DIR,
  INOTIFY_MARKER,
  NetworkPaths,
  NETWORKS_RUN_DIR,
  NETWORKS_STATE_DIR,
  NFT_FAMILY,
  NFT_TABLE,
  NFT_TABLE_REF,
  nftChainId,
  RUN_DIR,
  STATE_DIR,
  SYSCTL,
} from "../naming";
import { AppliedNetworkRecord, firewallOf, ObservedNetwork } from "../observe/observed";
import { Action } from "../ops/action";
import * as ops from "../ops/ops";
import { needsDnsmasq } from "../render/dnsmasq";
import { restoreGlobalActions } from "./restore";

/** virtnet's directories and the network's own, as many as are missing. */
export function dirActions(observed: ObservedNetwork, paths: NetworkPaths): Action[] {
  const wanted = [STATE_DIR, NETWORKS_STATE_DIR, paths.stateDir, RUN_DIR, NETWORKS_RUN_DIR, paths.runDir];
  return wanted.filter((d) => !observed.dirs.includes(d)).map(ops.makeDir);
}

export function forwardingActions(spec: NetworkSpec, observed: ObservedNetwork): Action[] {
  if (!routesTraffic(spec)) return [];
  const actions: Action[] = [];
  const on = (family: string, key: string, marker: string) =>
    ops.sysctl(`enable ${family} forwarding`, key, 1, 0, { marker });
  if (!observed.ipForward) actions.push(on("IPv4", SYSCTL.ipv4Forwarding, FORWARDING_MARKERS.ipv4));
  if (spec.ipv6 && !observed.ip6Forward)
    actions.push(on("IPv6", SYSCTL.ipv6Forwarding, FORWARDING_MARKERS.ipv6));
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
export function inotifyActions(
  spec: NetworkSpec,
  ranges: DhcpRangeSpec[],
  observed: ObservedNetwork,
): Action[] {
  const i = observed.inotify;
  if (!i || !needsDnsmasq(spec, ranges)) return [];
  const needed = observed.networks.filter((n) => n.name !== spec.name).length + 1 + INOTIFY_RESERVE;
  if (i.limit >= needed) return [];
  const wanted = Math.ceil(needed / INOTIFY_STEP) * INOTIFY_STEP;
  const original = i.marker?.original ?? i.limit;
  const previous = i.marker ? `${i.marker.original} ${i.marker.raised}\n` : undefined;
  const record = ops.writeFile(INOTIFY_MARKER, `${original} ${wanted}\n`, previous);
  const name = `raise ${SYSCTL.inotifyInstances} to ${wanted}`;
  return [ops.sysctl(name, SYSCTL.inotifyInstances, wanted, i.limit, { file: record })];
}

/**
 * What a network's delete takes away host-wide when it is the last to need it: virtnet's directories,
 * forwarding, the inotify limit, the shared nft table, the boot restore pieces, and the state directory.
 */
export function hostTeardownActions(name: string, observed: ObservedNetwork): Action[] {
  const actions: Action[] = [];
  const others = observed.networks.filter((n) => n.name !== name);
  const last = others.length === 0;
  // Remove virtnet's top directories when this was the last network, so the host is as it was before.
  if (last) {
    const top = [NETWORKS_STATE_DIR, NETWORKS_RUN_DIR, RUN_DIR].filter((d) => observed.dirs.includes(d));
    if (top.length) actions.push(ops.removeEmptyDirs("remove virtnet directories", top));
  }
  // Records from before the spec was recorded: their mode alone.
  const routes = (n: AppliedNetworkRecord) =>
    n.spec ? routesTraffic(n.spec as NetworkSpec) : modeForwards(n.mode);
  if (observed.forwardMarker && !others.some(routes))
    actions.push(
      ops.sysctlRestore("restore IPv4 forwarding", SYSCTL.ipv4Forwarding, 0, FORWARDING_MARKERS.ipv4),
    );
  const othersWithIpv6 = others.some((n) => routes(n) && (n.spec as NetworkSpec | undefined)?.ipv6);
  if (observed.forward6Marker && !othersWithIpv6)
    actions.push(
      ops.sysctlRestore("restore IPv6 forwarding", SYSCTL.ipv6Forwarding, 0, FORWARDING_MARKERS.ipv6),
    );
  const inotify = observed.inotify;
  if (last && inotify?.marker) {
    // Put the original back, unless someone changed the limit since virtnet raised it.
    const back = inotify.limit === inotify.marker.raised ? inotify.marker.original : undefined;
    actions.push(
      ops.sysctlRestore(`restore ${SYSCTL.inotifyInstances}`, SYSCTL.inotifyInstances, back, INOTIFY_MARKER),
    );
  }
  if (last) actions.push(...removeNftTable(name, observed));
  // Routes, extensions of networks on other hosts and HostBridges keep the boot-time restore and the state
  // directory.
  const nothingLeft =
    last &&
    observed.route.records.length === 0 &&
    (observed.extensions ?? []).length === 0 &&
    !observed.dirs.includes(HOST_BRIDGES_DIR);
  if (nothingLeft) actions.push(...restoreGlobalActions(observed, false));
  if (nothingLeft && observed.dirs.includes(STATE_DIR)) actions.push(ops.removeStateDir());
  return actions;
}

/** With the last network, virtnet's nft table goes too, unless it holds chains that are not this network's. */
function removeNftTable(name: string, observed: ObservedNetwork): Action[] {
  const t = NFT_TABLE_REF;
  const fw = firewallOf(observed);
  if (!fw.virtnetTable) return [];
  // Chains of this network, and of networks the same script removes before it, are gone by then.
  const ids = [name, ...(observed.goneInRound ?? [])].map(nftChainId);
  const foreign = fw.nftChains.filter(
    (c) => c.startsWith(`${t} `) && !ids.some((id) => c.startsWith(`${t} ${id}.`)),
  );
  if (foreign.length) return [];
  return [ops.nftDeleteTable(NFT_FAMILY, NFT_TABLE)];
}
