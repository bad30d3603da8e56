// `ip -batch` lines that build and tune a network's bridge.
import { bridgeAlias } from "../naming";
import { NetworkSpec } from "../model/network";

/** Bridge attributes that can change in place; forward_delay is in hundredths of a second. */
export function bridgeTuning(stp: boolean, forwardDelay: number): string[] {
  return ["stp_state", stp ? "1" : "0", "forward_delay", String(forwardDelay)];
}

export function renderBridgeCreate(spec: NetworkSpec): string[] {
  const b = spec.bridge;
  const lines = [
    `link add name ${b.name} type bridge ${bridgeTuning(b.stp, b.delay * 100).join(" ")}`,
    `link set dev ${b.name} address ${b.macAddress}${b.mtu ? ` mtu ${b.mtu}` : ""} alias ${bridgeAlias(spec.name)}`,
  ];
  if (spec.ipv4)
    lines.push(`address add ${spec.ipv4.gateway}/${spec.ipv4.prefixLength} broadcast + dev ${b.name}`);
  // nodad: usable at once, so dnsmasq can bind it and advertise the prefix without waiting ~1 s for DAD.
  if (spec.ipv6) lines.push(`address add ${spec.ipv6.gateway}/${spec.ipv6.prefixLength} dev ${b.name} nodad`);
  lines.push(`link set dev ${b.name} up`);
  return lines;
}
