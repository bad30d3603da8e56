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
  /** Set by the SDK when the route goes via a VirtualNetwork. */
  network?: { name?: string; bridgeName?: string; cidr?: string; gatewayIp?: string };
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
  if ([name, raw.destination, raw.gateway, raw.metric].some(isUnknown) || containsUnknown(raw.network))
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
    const net = parseCidr(raw.network.cidr);
    if (gw && net && gw.kind() === net[0].kind() && !gw.match(net[0], net[1]))
      problems.add("gateway", `${raw.gateway} is not inside the network's subnet ${raw.network.cidr}`);
    if (gw && raw.network.gatewayIp === gw.toString())
      problems.add("gateway", `${raw.gateway} is the network's own address: use a router on that network`);
  }
  if (!problems.ok || !dest || !gw) return { errors: problems.errors };
  const spec: RouteSpec = {
    name,
    family: dest[0].kind() === "ipv4" ? 4 : 6,
    destination: normalizeCidr(dest[0], dest[1]),
    gateway: gw.toString(),
    metric,
  };
  if (device) spec.device = device;
  return { spec, errors: [] };
}
