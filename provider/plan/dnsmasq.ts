// The network's dnsmasq: its files, and a reload, a restart, a start or a stop as their changes need.
import { DhcpRangeSpec } from "../model/dhcpRange";
import { NetworkSpec } from "../model/network";
import { NetworkPaths } from "../naming";
import { isOurDnsmasq, ObservedNetwork } from "../observe/observed";
import { Action } from "../ops/action";
import * as ops from "../ops/ops";
import { needsDnsmasq, renderDhcpHosts, renderDnsmasqConf, renderHostsFile } from "../render/dnsmasq";

/** `mtu`: the segment's when the network is stretched over VXLAN (guests are told it). */
export function dnsmasqActions(
  spec: NetworkSpec,
  ranges: DhcpRangeSpec[],
  observed: ObservedNetwork,
  paths: NetworkPaths,
  mtu?: number,
): Action[] {
  const running = isOurDnsmasq(observed, paths.dnsmasqConf);
  // Files dnsmasq rereads on SIGHUP; a change to them never needs a restart, so leases and pid stay.
  // undefined: the file should not exist.
  const hotFiles: [string, string | undefined, string | undefined][] = [
    [paths.addnHosts, renderHostsFile(spec), observed.hosts],
    [paths.dhcpHosts, ranges.length ? renderDhcpHosts(ranges) : undefined, observed.dhcpHosts],
  ];
  const hotActions = (dnsmasqReads: boolean) =>
    hotFiles
      .filter(([, want, prev]) => want !== prev)
      .map(([path, want, prev]) =>
        want === undefined ? ops.removeFile(path, prev!) : ops.writeFile(path, want, prev, { dnsmasqReads }),
      );
  if (!needsDnsmasq(spec, ranges)) {
    const actions: Action[] = running ? [ops.dnsmasqStop(observed.dnsmasq, true)] : [];
    for (const [path, , prev] of [[paths.dnsmasqConf, undefined, observed.conf] as const, ...hotFiles])
      if (prev !== undefined) actions.push(ops.removeFile(path, prev));
    return actions;
  }
  const conf = renderDnsmasqConf(spec, paths, ranges, mtu);
  const confChanged = conf !== observed.conf;
  if (running && !confChanged) {
    const actions = hotActions(true);
    if (actions.length) actions.push(ops.dnsmasqHup(observed.dnsmasq));
    return actions;
  }
  // Removals first: the running dnsmasq rereads those files only on SIGHUP, and they follow a range record's
  // removal (range.ts), so the two share one rm.
  const hot = hotActions(false);
  const actions: Action[] = hot.filter((a) => a.removes);
  // The lease file stays: guests keep their addresses on renewal.
  if (running) actions.push(ops.dnsmasqStopForRestart(observed.dnsmasq));
  // Read only by the start below.
  if (confChanged) actions.push(ops.writeFile(paths.dnsmasqConf, conf, observed.conf, { unread: true }));
  actions.push(...hot.filter((a) => !a.removes));
  actions.push(ops.dnsmasqStart());
  return actions;
}

/** Delete: stops the network's dnsmasq when it is running. */
export function stopDnsmasqActions(observed: ObservedNetwork, paths: NetworkPaths): Action[] {
  return isOurDnsmasq(observed, paths.dnsmasqConf) ? [ops.dnsmasqStop(observed.dnsmasq)] : [];
}
