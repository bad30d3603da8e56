// A VirtualNetwork's operations on a host: apply, delete, read.
import { Host } from "../host/host";
import { NetworkSpec } from "../model/network";
import { networkPaths } from "../naming";
import { isOurDnsmasq, ObservedNetwork } from "../observe/observed";
import { appliedRecord, planApply, planDelete } from "../plan/network";
import { needsDnsmasq } from "../render/dnsmasq";
import { observe } from "./probe";
import { ApplyOptions, ApplyResult, runChange } from "./round";

/** Makes the host match `spec`: creates, repairs or updates in place. Runs nothing mutating when in sync. */
export function applyNetwork(host: Host, spec: NetworkSpec, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const paths = networkPaths(spec.name);
  return runChange(host, {
    name: spec.name,
    bridge: spec.bridge.name,
    tftpRoot: spec.tftp?.root,
    makePlan: (o) => planApply(spec, o, paths, { stack: opts.stack }), // ranges: as recorded on the host
    undo: true,
    failAfter: opts.failAfter,
    effect: { adds: appliedRecord(spec, "nftables", opts.stack) },
  });
}

/**
 * Removes the network and everything virtnet made for it. Succeeds when it is already gone. Refused while
 * another stack than `stack` (the deleting one) has dependants on it.
 */
export function deleteNetwork(
  host: Host,
  name: string,
  bridge: string,
  stack?: string,
): Promise<ApplyResult> {
  const paths = networkPaths(name);
  return runChange(host, {
    name,
    bridge,
    makePlan: (o) => planDelete(name, bridge, o, paths, stack),
    undo: false,
    effect: { removes: name },
  });
}

export interface NetworkStatus {
  /** False when nothing of the network is left on the host. */
  exists: boolean;
  /** What `up` would change to repair the host: empty when the host matches. */
  drift: string[];
  warnings: string[];
  dnsmasqPid?: number;
  bridgePorts: string[];
  observed: ObservedNetwork;
}

export async function readNetwork(host: Host, spec: NetworkSpec): Promise<NetworkStatus> {
  const paths = networkPaths(spec.name);
  const observed = await observe(host, spec.name, spec.bridge.name);
  const ours = isOurDnsmasq(observed, paths.dnsmasqConf);
  const exists =
    observed.bridge !== undefined ||
    observed.nftListing !== undefined ||
    ours ||
    observed.networks.some((n) => n.name === spec.name);
  const plan = planApply(spec, observed, paths);
  // Pending range-record writes are not drift of the network itself.
  const drift = plan.errors.length ? plan.errors : plan.actions.map((a) => a.name);
  const status: NetworkStatus = {
    exists,
    drift,
    warnings: plan.warnings,
    bridgePorts: observed.bridge?.ports ?? [],
    observed,
  };
  if (ours && needsDnsmasq(spec, observed.ranges)) status.dnsmasqPid = observed.dnsmasq!.pid;
  return status;
}
