// A DhcpRange's operations on a host: the network's dnsmasq converged from the host's record of the network
// plus its ranges.
import { Host } from "../host/host";
import { DhcpRangeSpec, reservationClashes } from "../model/dhcpRange";
import { NetworkSpec } from "../model/network";
import { networkPaths } from "../naming";
import { ObservedNetwork, Recorded } from "../observe/observed";
import { planApply } from "../plan/network";
import { nothingToDo, Plan, refused } from "../plan/plan";
import { observe } from "./probe";
import { ApplyOptions, ApplyResult, runChange } from "./round";

/** The network a DHCP range belongs to, as its outputs name it. */
export interface NetworkRef {
  name: string;
  bridge: string;
}

function noNetwork(ref: NetworkRef): Plan {
  return refused([`network "${ref.name}" does not exist on this host: create its VirtualNetwork first`]);
}

/**
 * Converges a network's dnsmasq from the host's record of the network plus the ranges `choose` returns.
 * `choose` gets the recorded ranges and returns the wanted ones, or undefined when there is nothing to do.
 */
function convergeRanges(
  host: Host,
  ref: NetworkRef,
  choose: (recorded: DhcpRangeSpec[]) => DhcpRangeSpec[] | undefined,
  missingNetwork: (ref: NetworkRef) => Plan,
  failAfter?: string,
  refuse: (recorded: DhcpRangeSpec[]) => string[] = () => [],
): Promise<ApplyResult> {
  const paths = networkPaths(ref.name);
  const plan = (o: ObservedNetwork): Plan => {
    const record = o.networks.find((n) => n.name === ref.name);
    if (!record?.spec) return missingNetwork(ref);
    const refusals = refuse(o.ranges);
    if (refusals.length) return refused(refusals);
    const ranges = choose(o.ranges);
    if (!ranges) return nothingToDo();
    return planApply(record.spec as NetworkSpec, o, paths, { ranges });
  };
  return runChange(host, {
    name: ref.name,
    bridge: ref.bridge,
    makePlan: plan,
    undo: true,
    failAfter,
  });
}

/** Adds or changes one range: the network's dnsmasq is converged from the host's record plus all ranges. */
export function applyRange(
  host: Host,
  ref: NetworkRef,
  range: DhcpRangeSpec,
  opts: ApplyOptions = {},
): Promise<ApplyResult> {
  const choose = (recorded: Recorded<DhcpRangeSpec>[]) => {
    // The record names the stack that declared the range (kept from the record when the change does not say).
    const stack = opts.stack ?? recorded.find((r) => r.name === range.name)?.stack;
    const record: Recorded<DhcpRangeSpec> = stack === undefined ? range : { ...range, stack };
    return [...recorded.filter((r) => r.name !== range.name), record];
  };
  const clashes = (recorded: DhcpRangeSpec[]) => reservationClashes(range, recorded);
  return convergeRanges(host, ref, choose, noNetwork, opts.failAfter, clashes);
}

/** Removes one range; the network's dnsmasq keeps serving the others and DNS. Success when already gone. */
export function deleteRange(host: Host, ref: NetworkRef, rangeName: string): Promise<ApplyResult> {
  const choose = (recorded: DhcpRangeSpec[]) =>
    recorded.some((r) => r.name === rangeName) ? recorded.filter((r) => r.name !== rangeName) : undefined;
  return convergeRanges(host, ref, choose, () => nothingToDo());
}

/** The range as recorded on the host (with the stack that declared it), or undefined when it is gone. */
export async function readRange(
  host: Host,
  ref: NetworkRef,
  rangeName: string,
): Promise<Recorded<DhcpRangeSpec> | undefined> {
  const observed = await observe(host, ref.name, ref.bridge);
  return observed.ranges.find((r) => r.name === rangeName);
}
