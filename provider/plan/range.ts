// A network's DHCP ranges: whether they fit its subnets, and the records virtnet keeps of them on the host.
import { DhcpRangeSpec, rangeInside, rangeOverlaps } from "../model/dhcpRange";
import { NetworkSpec } from "../model/network";
import { NetworkPaths, rangeRecordPath } from "../naming";
import { ObservedNetwork } from "../observe/observed";
import { Action } from "../ops/action";
import * as ops from "../ops/ops";

export function rangeErrors(spec: NetworkSpec, ranges: DhcpRangeSpec[]): string[] {
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

export function rangeRecordActions(
  network: string,
  ranges: DhcpRangeSpec[],
  observed: ObservedNetwork,
  paths: NetworkPaths,
): Action[] {
  const actions: Action[] = [];
  if (ranges.length && !observed.dirs.includes(paths.rangesDir)) actions.push(ops.makeDir(paths.rangesDir));
  const text = (r: DhcpRangeSpec) => JSON.stringify(r) + "\n";
  for (const r of ranges) {
    const prev = observed.ranges.find((o) => o.name === r.name);
    const prevText = prev ? text(prev) : undefined;
    if (text(r) !== prevText)
      actions.push(ops.writeFile(rangeRecordPath(network, r.name), text(r), prevText));
  }
  for (const o of observed.ranges)
    if (!ranges.some((r) => r.name === o.name))
      actions.push(ops.removeFile(rangeRecordPath(network, o.name), text(o)));
  return actions;
}
