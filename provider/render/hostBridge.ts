// A HostBridge's `ip -batch` lines: the move of an uplink's addressing into the bridge in one step with the
// enslavement, and the rollback that puts every address and route back on the uplink as it was. Both are
// rendered from the uplink's own `ip -j` listings, saved on the host before anything changes.
import { HostBridgeSpec } from "../model/hostBridge";
import { hostBridgeAlias } from "../naming";
import { bridgeTuning, segmentTrunkLine, vlanFilteringArgs } from "./ip";

/** An address as `ip -j addr` lists it. */
export interface IpAddrInfo {
  family: string;
  local: string;
  prefixlen: number;
  broadcast?: string;
  scope?: string;
  dynamic?: boolean;
  noprefixroute?: boolean;
  nodad?: boolean;
  valid_life_time?: number;
  preferred_life_time?: number;
}

/** A route as `ip -j route show table all` lists it. */
export interface IpRoute {
  type?: string;
  dst: string;
  gateway?: string;
  dev?: string;
  table?: string;
  protocol?: string;
  scope?: string;
  prefsrc?: string;
  metric?: number;
  flags?: string[];
  pref?: string;
  metrics?: Record<string, number>[];
}

/** The uplink before the move, as the host lists it. */
export interface UplinkState {
  name: string;
  mac: string;
  mtu: number;
  up: boolean;
  addresses: IpAddrInfo[];
  /** Every route through the uplink, in every table, of both families. */
  routes: IpRoute[];
  /** Command lines of the DHCP clients (ISC dhclient) that ran on the uplink: they follow the addressing. */
  clients?: string[][];
}

const FOREVER = 4294967295;

/** The kernel makes these itself from an address or a link (prefix, local, broadcast, link-local, multicast). */
export function isKernelRoute(r: IpRoute): boolean {
  return (r.type !== undefined && r.type !== "unicast") || r.protocol === "kernel";
}

/** Addresses that move: all but the uplink's IPv6 link-local one (the bridge makes its own from the same MAC). */
export function movedAddresses(state: UplinkState): IpAddrInfo[] {
  return state.addresses.filter((a) => !(a.family === "inet6" && a.scope === "link"));
}

export function movedRoutes(state: UplinkState): IpRoute[] {
  return state.routes.filter((r) => !isKernelRoute(r));
}

/** Prefix routes the kernel makes, but someone tuned (quickack, mtu...): the tuning is put back with them. */
function tunedKernelRoutes(state: UplinkState): IpRoute[] {
  return state.routes.filter(
    (r) => r.protocol === "kernel" && (r.type ?? "unicast") === "unicast" && (r.metrics ?? []).length > 0,
  );
}

function addressLine(a: IpAddrInfo, dev: string, nodad: boolean): string {
  // ip -batch takes no family option per line: the address says its family.
  const words = ["address", "add", `${a.local}/${a.prefixlen}`];
  if (a.broadcast) words.push("broadcast", a.broadcast);
  if (a.scope) words.push("scope", a.scope);
  if (a.noprefixroute) words.push("noprefixroute");
  if (a.nodad || (nodad && a.family === "inet6")) words.push("nodad");
  if (a.valid_life_time !== undefined && a.valid_life_time !== FOREVER)
    words.push("valid_lft", String(a.valid_life_time), "preferred_lft", String(a.preferred_life_time ?? 0));
  words.push("dev", dev);
  return words.join(" ");
}

function routeLine(r: IpRoute, dev: string, family: "-4" | "-6", verb = "add"): string {
  // ip -batch takes no family option per line: an IPv6 default route is spelled ::/0.
  const words = ["route", verb];
  if (r.type && r.type !== "unicast") words.push(r.type);
  words.push(family === "-6" && r.dst === "default" ? "::/0" : r.dst);
  if (r.gateway) words.push("via", r.gateway);
  words.push("dev", dev);
  if (r.table && r.table !== "main") words.push("table", r.table);
  if (r.protocol) words.push("proto", r.protocol);
  if (r.scope && r.scope !== (r.gateway ? "global" : "link") && r.scope !== "global")
    words.push("scope", r.scope);
  if (r.prefsrc) words.push("src", r.prefsrc);
  if (r.metric !== undefined) words.push("metric", String(r.metric));
  if (r.pref) words.push("pref", r.pref);
  for (const m of r.metrics ?? []) for (const [k, v] of Object.entries(m)) words.push(k, String(v));
  if (r.flags?.includes("onlink")) words.push("onlink");
  return words.join(" ");
}

const familyOf = (r: IpRoute): "-4" | "-6" => (r.dst.includes(":") || r.gateway?.includes(":") ? "-6" : "-4");

/** The move, in one batch: bridge made with the uplink's MAC, uplink enslaved, addresses then routes moved. */
export function renderMove(spec: HostBridgeSpec, state: UplinkState): string[] {
  const br = spec.name;
  const mtu = spec.mtu ?? state.mtu;
  const tuning = [
    ...bridgeTuning(spec.stp, spec.forwardDelay * 100),
    ...(spec.vlanFiltering ? vlanFilteringArgs(true) : []),
  ];
  const lines = [
    `link add name ${br} type bridge ${tuning.join(" ")}`,
    `link set dev ${br} address ${state.mac} mtu ${mtu} alias ${hostBridgeAlias(state.name)}`,
  ];
  if (mtu !== state.mtu) lines.push(`link set dev ${state.name} mtu ${mtu}`);
  lines.push(`link set dev ${state.name} master ${br}`, `link set dev ${br} up`);
  if (!state.up) lines.push(`link set dev ${state.name} up`);
  const addresses = movedAddresses(state);
  const routes = movedRoutes(state);
  // Taken off the uplink first, while each still exists (IPv6 ones outlive the addresses).
  for (const r of routes) lines.push(routeLine(r, state.name, familyOf(r), "del"));
  for (const a of addresses) lines.push(`address del ${a.local}/${a.prefixlen} dev ${state.name}`);
  // nodad: the moved IPv6 addresses are the host's already, usable at once.
  for (const a of addresses) lines.push(addressLine(a, br, true));
  for (const r of tunedKernelRoutes(state)) lines.push(routeLine(r, br, familyOf(r), "replace"));
  for (const r of routes) lines.push(routeLine(r, br, familyOf(r)));
  return lines;
}

/** The rollback: uplink out of the bridge, bridge gone, every address and route back as saved. */
export function renderRollback(spec: HostBridgeSpec, state: UplinkState): string[] {
  // The bridge goes down first (its routes go with it) and is deleted last: deleting a link waits for the
  // kernel's RCU grace periods, tens of ms in which the host would have no address on its LAN.
  const lines = [`link set dev ${state.name} nomaster`, `link set dev ${spec.name} down`];
  lines.push(`link set dev ${state.name} address ${state.mac} mtu ${state.mtu} ${state.up ? "up" : "down"}`);
  for (const a of movedAddresses(state)) lines.push(addressLine(a, state.name, false));
  for (const r of tunedKernelRoutes(state)) lines.push(routeLine(r, state.name, familyOf(r), "replace"));
  for (const r of movedRoutes(state)) lines.push(routeLine(r, state.name, familyOf(r)));
  lines.push(`link del dev ${spec.name}`);
  return lines;
}

/** The `bridge -batch` lines run after the move: a VLAN-aware bridge's uplink made a trunk; none otherwise. */
export function renderMoveVlans(spec: HostBridgeSpec): string[] {
  return spec.vlanFiltering ? [segmentTrunkLine(spec.uplink)] : [];
}

/**
 * An in-place change of an existing bridge's vlan_filtering to `on`, from `was` (with the uplink a trunk or
 * not), and its exact undo: `ip -batch` lines (the bridge's setting) then `bridge -batch` lines (the trunk).
 */
export function renderVlanFilteringChange(
  spec: HostBridgeSpec,
  on: boolean,
  was: { filtering: boolean; trunk: boolean },
): { apply: string[]; applyVlans: string[]; undo: string[]; undoVlans: string[] } {
  const setting = (v: boolean) => `link set dev ${spec.name} type bridge ${vlanFilteringArgs(v).join(" ")}`;
  const trunk = (want: boolean, have: boolean) =>
    want === have ? [] : [segmentTrunkLine(spec.uplink, !want)];
  return {
    apply: [setting(on)],
    applyVlans: on ? [segmentTrunkLine(spec.uplink)] : trunk(false, was.trunk),
    undo: [setting(was.filtering)],
    undoVlans: trunk(was.trunk, on),
  };
}
