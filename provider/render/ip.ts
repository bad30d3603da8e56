// `ip -batch` lines that build and tune a network's bridge.
import { quote } from "shell-quote";
import { bridgeAlias, ipv6DisabledPath } from "../naming";
import { NetworkSpec } from "../model/network";
import { VLAN_MAX } from "../model/port";

/** Bridge attributes that can change in place; forward_delay is in hundredths of a second. */
export function bridgeTuning(stp: boolean, forwardDelay: number): string[] {
  return ["stp_state", stp ? "1" : "0", "forward_delay", String(forwardDelay)];
}

/** A VLAN-aware bridge's setting (`ip link ... type bridge vlan_filtering 1`); nothing for a plain one. */
export function vlanFilteringArgs(on: boolean): string[] {
  return ["vlan_filtering", on ? "1" : "0"];
}

export function renderBridgeCreate(spec: NetworkSpec): string[] {
  const b = spec.bridge;
  const tuning = [...bridgeTuning(b.stp, b.delay * 100), ...(b.vlanFiltering ? vlanFilteringArgs(true) : [])];
  const lines = [
    `link add name ${b.name} type bridge ${tuning.join(" ")}`,
    `link set dev ${b.name} address ${b.macAddress}${b.mtu ? ` mtu ${b.mtu}` : ""} alias ${bridgeAlias(spec.name)}`,
  ];
  if (spec.ipv4)
    lines.push(`address add ${spec.ipv4.gateway}/${spec.ipv4.prefixLength} broadcast + dev ${b.name}`);
  // nodad: usable at once, so dnsmasq can bind it and advertise the prefix without waiting ~1 s for DAD.
  if (spec.ipv6) lines.push(`address add ${spec.ipv6.gateway}/${spec.ipv6.prefixLength} dev ${b.name} nodad`);
  lines.push(`link set dev ${b.name} up`);
  return lines;
}

/** A stretched segment's VXLAN device on one member, as the planner and the boot-time restore make it. */
export interface VxlanDevice {
  name: string;
  vni: number;
  port: number;
  local: string;
  mtu: number;
  alias: string;
  /** The bridge it is a port of. */
  bridge: string;
  /** On a VLAN-aware bridge: the device is a trunk of every VLAN (segmentTrunkLine). */
  trunk?: boolean;
}

/** VLANs a segment's VXLAN device carries tagged on a VLAN-aware bridge: all but VLAN 1, its untagged PVID. */
export const TRUNK_VLANS = { first: 2, last: VLAN_MAX };

/**
 * The `bridge -batch` line that makes a port (a segment's VXLAN device, a HostBridge's uplink) a trunk of
 * TRUNK_VLANS; `del` takes them off.
 */
export function segmentTrunkLine(dev: string, del = false): string {
  return `vlan ${del ? "del" : "add"} dev ${dev} vid ${TRUNK_VLANS.first}-${TRUNK_VLANS.last}`;
}

/**
 * Made down and enslaved; brought up by the caller (at boot the local address may come later). Learning
 * stays on: after the first frame, unicast goes to the one member behind a MAC instead of to all of them. No
 * IPv6 link-local address: the device is only a bridge port.
 */
export function renderVxlanCreate(d: VxlanDevice): string[] {
  return [
    `link add name ${d.name} type vxlan id ${d.vni} dstport ${d.port} local ${d.local}`,
    `link set dev ${d.name} mtu ${d.mtu} addrgenmode none alias ${d.alias} master ${d.bridge}`,
  ];
}

/** An extension's bridge, down: no address, STP off; brought up by the caller once its IPv6 is off. */
export function renderExtensionBridgeCreate(b: {
  name: string;
  mac: string;
  mtu: number;
  alias: string;
  vlanFiltering?: boolean;
}): string[] {
  const filtering = b.vlanFiltering ? ` ${vlanFilteringArgs(true).join(" ")}` : "";
  return [
    `link add name ${b.name} type bridge stp_state 0 forward_delay 0${filtering}`,
    `link set dev ${b.name} address ${b.mac} mtu ${b.mtu} alias ${b.alias}`,
  ];
}

/** Turns IPv6 off on an interface: no link-local address, no SLAAC from the segment's router advertisements. */
export function ipv6OffText(ifname: string): string {
  const p = quote([ipv6DisabledPath(ifname)]);
  return `{ [ ! -e ${p} ] || echo 1 > ${p}; }`;
}

/** `ip -batch` lines that make a network's 802.1Q sub-interface and put it on its bridge. */
export function renderVlanLinkCreate(
  network: string,
  bridge: string,
  vlan: { id: number; uplink: string; link: string },
): string[] {
  return [
    `link add link ${vlan.uplink} name ${vlan.link} type vlan id ${vlan.id}`,
    `link set dev ${vlan.link} alias ${bridgeAlias(network)} master ${bridge} up`,
  ];
}
