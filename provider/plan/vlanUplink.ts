// A network's VLAN on a trunk uplink: the 802.1Q sub-interface virtnet makes on the uplink and puts on the
// network's bridge, with the network's alias as proof that it is virtnet's.
import { NetworkSpec } from "../model/network";
import { bridgeAlias } from "../naming";
import { ObservedLink, ObservedNetwork } from "../observe/observed";
import { Action } from "../ops/action";
import * as ops from "../ops/ops";
import { renderVlanLinkCreate } from "../render/ip";

/** The network's sub-interfaces on the host (one, unless its vlan changed). */
function ownVlanLinks(network: string, o: ObservedNetwork): ObservedLink[] {
  return (o.links ?? []).filter((l) => l.kind === "vlan" && l.alias === bridgeAlias(network));
}

/** What the host forbids: an uplink it does not have, a sub-interface's name taken by something else. */
export function vlanUplinkErrors(spec: NetworkSpec, o: ObservedNetwork): string[] {
  const v = spec.vlan;
  if (!v) return [];
  const links = o.links ?? [];
  const errors: string[] = [];
  if (!links.some((l) => l.name === v.uplink))
    errors.push(`vlan.uplink ${v.uplink} does not exist on the host`);
  const taken = links.find((l) => l.name === v.link);
  if (taken && taken.alias !== bridgeAlias(spec.name))
    errors.push(
      taken.alias?.startsWith("virtnet:")
        ? `interface ${v.link} (VLAN ${v.id} of ${v.uplink}) belongs to virtnet network "${taken.alias.slice(8)}"`
        : `interface ${v.link} (VLAN ${v.id} of ${v.uplink}) already exists and is not virtnet's`,
    );
  return errors;
}

/** Makes the sub-interface, repairs it, or replaces one of another VLAN or uplink. */
export function vlanUplinkActions(spec: NetworkSpec, o: ObservedNetwork): Action[] {
  const v = spec.vlan;
  const bridge = spec.bridge.name;
  const actions: Action[] = [];
  let current: ObservedLink | undefined;
  for (const l of ownVlanLinks(spec.name, o)) {
    if (v && l.name === v.link && l.vlan?.id === v.id && l.vlan.parent === v.uplink) current = l;
    else {
      const old = { id: l.vlan?.id ?? 0, uplink: l.vlan?.parent ?? "", link: l.name };
      actions.push(
        ops.linkDelete(
          `remove VLAN link ${l.name}`,
          l.name,
          renderVlanLinkCreate(spec.name, l.master ?? bridge, old),
        ),
      );
    }
  }
  if (!v) return actions;
  if (!current) {
    actions.push(
      ops.ipBatch(
        `create VLAN link ${v.link} (VLAN ${v.id} of ${v.uplink})`,
        renderVlanLinkCreate(spec.name, bridge, v),
        ["link", "del", "dev", v.link],
      ),
    );
    return actions;
  }
  const set = (...args: string[]) => ["link", "set", "dev", v.link, ...args];
  if (current.master !== bridge)
    actions.push(
      ops.ip(
        `put VLAN link ${v.link} on bridge ${bridge} (it is on ${current.master ?? "none"})`,
        set("master", bridge),
        current.master ? set("master", current.master) : set("nomaster"),
      ),
    );
  if (!current.up) actions.push(ops.ip(`bring VLAN link ${v.link} up`, set("up"), set("down")));
  return actions;
}

/** A network's delete: its sub-interfaces go (the bridge's deletion only takes them off it). */
export function vlanUplinkDeleteActions(network: string, o: ObservedNetwork): Action[] {
  return ownVlanLinks(network, o).map((l) => ops.linkDelete(`delete VLAN link ${l.name}`, l.name));
}
