// A static route's inputs, validated and normalized into the route virtnet keeps on a host.
import * as ipaddr from "ipaddr.js";
import {
  checkInteger,
  checkNoControlCharacters,
  checkSafeName,
  containsUnknown,
  isUnknown,
  parseStrictCidr,
  parseStrictIp,
  Problems,
  PropertyError,
} from "./validation";

export interface RouteInputs {
  name?: string;
  destination?: string;
  gateway?: string;
  metric?: number;
  /** Set by the SDK when the route goes via a VirtualNetwork: its subnets and own addresses, per family. */
  network?: {
    name?: string;
    bridgeName?: string;
    cidr?: string;
    gatewayIp?: string;
    ipv6Cidr?: string;
    ipv6Gateway?: string;
  };
}

export interface RouteSpec {
  name: string;
  family: 4 | 6;
  destination: string; // normalized CIDR
  gateway: string;
  metric: number;
  device?: string; // the network's bridge when the route goes via a network
}

const parseCidr = parseStrictCidr;

/** The kernel stores an IPv6 route given metric 0 (or none) with this one (IP6_RT_PRIO_USER). */
export const IPV6_USER_METRIC = 1024;

export function normalizeCidr(addr: ipaddr.IPv4 | ipaddr.IPv6, len: number): string {
  return `${addr.toString()}/${len}`;
}

function networkAddress(addr: ipaddr.IPv4 | ipaddr.IPv6, len: number): string {
  return addr.kind() === "ipv4"
    ? ipaddr.IPv4.networkAddressFromCIDR(`${addr}/${len}`).toString()
    : ipaddr.IPv6.networkAddressFromCIDR(`${addr}/${len}`).toString();
}

export function buildRouteSpec(
  raw: RouteInputs,
  defaultName: string,
): { spec?: RouteSpec; errors: PropertyError[] } {
  const problems = new Problems();
  const name = raw.name ?? defaultName;
  checkNoControlCharacters({ ...raw, name }, "", problems);
  if (!problems.ok) return { errors: problems.errors };
  // A network whose bridge is not known yet (preview of a new one) still has its declared subnet checked.
  if ([name, raw.destination, raw.gateway, raw.metric].some(isUnknown) || isUnknown(raw.network))
    return { errors: [] };
  checkSafeName(name, "name", problems, 64);
  const dest = parseCidr(raw.destination);
  if (!dest)
    problems.add("destination", `"${raw.destination}" is not an IPv4 or IPv6 CIDR like 10.60.0.0/16`);
  else if (networkAddress(dest[0], dest[1]) !== dest[0].toString())
    problems.add(
      "destination",
      `host bits are set: did you mean ${networkAddress(dest[0], dest[1])}/${dest[1]}?`,
    );
  let gw: ipaddr.IPv4 | ipaddr.IPv6 | undefined;
  const gwParsed = parseStrictIp(raw.gateway);
  if (!gwParsed) problems.add("gateway", `"${raw.gateway}" is not an IPv4 or IPv6 address`);
  else {
    gw = gwParsed;
    if (dest && gw.kind() !== dest[0].kind())
      problems.add("gateway", "must be of the same IP family as destination");
  }
  let metric = 0;
  if (raw.metric !== undefined && checkInteger(raw.metric, "metric", problems, 0, 4294967295))
    metric = raw.metric;
  let device: string | undefined;
  if (raw.network) {
    device = raw.network.bridgeName;
    // The network's subnet of the gateway's family (`cidr` may be either: the libvirt import gives one).
    const family = gw?.kind();
    const subnets = [
      [raw.network.cidr, raw.network.gatewayIp],
      [raw.network.ipv6Cidr, raw.network.ipv6Gateway],
    ] as const;
    const own = subnets.find(([c]) => parseCidr(c)?.[0].kind() === family);
    const net = own && parseCidr(own[0]);
    if (gw && net && !gw.match(net[0], net[1]))
      problems.add("gateway", `${raw.gateway} is not inside the network's subnet ${own[0]}`);
    else if (gw && !net && subnets.some(([c]) => parseCidr(c)) && !subnets.some(([c]) => isUnknown(c)))
      problems.add(
        "gateway",
        `${raw.gateway} is an ${family === "ipv6" ? "IPv6" : "IPv4"} address and the network has no subnet of that family`,
      );
    if (gw && subnets.some(([, g]) => g === gw.toString()))
      problems.add("gateway", `${raw.gateway} is the network's own address: use a router on that network`);
  }
  if (!problems.ok || !dest || !gw || containsUnknown(raw.network)) return { errors: problems.errors };
  const family = dest[0].kind() === "ipv4" ? 4 : 6;
  const spec: RouteSpec = {
    name,
    family,
    destination: normalizeCidr(dest[0], dest[1]),
    gateway: gw.toString(),
    // The metric the kernel lists back, which is how virtnet finds its route again.
    metric: family === 6 && metric === 0 ? IPV6_USER_METRIC : metric,
  };
  if (device) spec.device = device;
  return { spec, errors: [] };
}
