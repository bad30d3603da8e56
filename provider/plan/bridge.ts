// The network's bridge: made whole when missing, otherwise changed in place so its guests' ports stay.
import { NetworkSpec } from "../model/network";
import { ObservedNetwork } from "../observe/observed";
import { Action } from "../ops/action";
import * as ops from "../ops/ops";
import { bridgeTuning, renderBridgeCreate, vlanFilteringArgs } from "../render/ip";

export function bridgeActions(spec: NetworkSpec, observed: ObservedNetwork): Action[] {
  const b = observed.bridge;
  const name = spec.bridge.name;
  if (!b) return [ops.linkCreate("create bridge", name, renderBridgeCreate(spec))];
  const actions: Action[] = [];
  const want = spec.bridge;
  const set = (...args: string[]) => ["link", "set", "dev", name, ...args];
  if (b.stp !== want.stp || b.forwardDelay !== want.delay * 100)
    actions.push(
      ops.ip(
        "tune bridge",
        set("type", "bridge", ...bridgeTuning(want.stp, want.delay * 100)),
        set("type", "bridge", ...bridgeTuning(b.stp, b.forwardDelay)),
      ),
    );
  if (!!b.vlanFiltering !== !!want.vlanFiltering)
    actions.push(
      ops.ip(
        want.vlanFiltering ? "turn VLAN filtering on" : "turn VLAN filtering off",
        set("type", "bridge", ...vlanFilteringArgs(!!want.vlanFiltering)),
        set("type", "bridge", ...vlanFilteringArgs(!!b.vlanFiltering)),
      ),
    );
  if (b.mac !== want.macAddress)
    actions.push(ops.ip("set bridge MAC address", set("address", want.macAddress), set("address", b.mac)));
  if (want.mtu !== undefined && b.mtu !== want.mtu)
    actions.push(ops.ip("set bridge MTU", set("mtu", String(want.mtu)), set("mtu", String(b.mtu))));
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
    const add = (a: string) => [family, "address", "add", a, ...extra, "dev", name];
    const del = (a: string) => [family, "address", "del", a, "dev", name];
    for (const a of have)
      if (!wantAddr.includes(a)) actions.push(ops.ip(`remove address ${a}`, del(a), add(a)));
    for (const a of wantAddr) if (!have.includes(a)) actions.push(ops.ip(`add address ${a}`, add(a), del(a)));
  }
  if (!b.up) actions.push(ops.ip("bring bridge up", set("up"), set("down")));
  return actions;
}
