// DHCP ranges of a network: validation and the normalized form stored on the host.
import * as ipaddr from "ipaddr.js";
import {
  checkNoControlCharacters,
  checkSafeName,
  checkUnicastMac,
  isDnsName,
  isUnknown,
  Problems,
  PropertyError,
} from "../validation";

export interface DhcpRangeInputs {
  name?: string;
  start?: string;
  end?: string;
  leaseTime?: string;
  hosts?: { mac?: string; ip?: string; hostname?: string }[];
}

export interface DhcpReservation {
  mac: string;
  ip: string;
  hostname?: string;
}

export interface DhcpRangeSpec {
  name: string;
  start: string;
  end: string;
  size: number;
  leaseTime: string; // dnsmasq syntax: "1h", "3600", "infinite"
  hosts: DhcpReservation[];
}

/** The subnet facts of the network a range belongs to; fields are undefined while unknown. */
export interface RangeNetworkFacts {
  cidr?: string;
  gateway?: string;
}

export const DEFAULT_LEASE = "1h";
const LEASE = /^(\d+)([smhdw]?)$/;
const UNIT_SECONDS: Record<string, number> = { "": 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

function toNumber(a: ipaddr.IPv4): number {
  return a.octets.reduce((n, o) => n * 256 + o, 0);
}

function parseV4(value: unknown, path: string, problems: Problems): ipaddr.IPv4 | undefined {
  if (typeof value !== "string" || !ipaddr.IPv4.isValidFourPartDecimal(value)) {
    if (typeof value === "string" && ipaddr.IPv6.isValid(value))
      problems.add(path, "IPv6 ranges need an IPv6 network, which virtnet does not support yet");
    else problems.add(path, `"${value}" is not an IPv4 address`);
    return undefined;
  }
  return ipaddr.IPv4.parse(value);
}

export function buildRangeSpec(
  raw: DhcpRangeInputs,
  defaultName: string,
  net: RangeNetworkFacts,
): { spec?: DhcpRangeSpec; errors: PropertyError[] } {
  const problems = new Problems();
  const name = raw.name ?? defaultName;
  checkNoControlCharacters({ ...raw, name }, "", problems);
  if (!problems.ok) return { errors: problems.errors };
  if (isUnknown(name) || isUnknown(raw.start) || isUnknown(raw.end)) return { errors: [] };
  checkSafeName(name, "name", problems, 64);
  const start = parseV4(raw.start, "start", problems);
  const end = parseV4(raw.end, "end", problems);
  let leaseTime = DEFAULT_LEASE;
  if (raw.leaseTime !== undefined && !isUnknown(raw.leaseTime)) {
    const m = typeof raw.leaseTime === "string" ? LEASE.exec(raw.leaseTime) : null;
    if (raw.leaseTime === "infinite") leaseTime = "infinite";
    else if (!m)
      problems.add(
        "leaseTime",
        `"${raw.leaseTime}" is not a lease time like "3600", "30m", "1h", "7d" or "infinite"`,
      );
    else if (Number(m[1]) * UNIT_SECONDS[m[2]] < 120)
      problems.add("leaseTime", "must be at least 2 minutes (dnsmasq's minimum)");
    else leaseTime = raw.leaseTime;
  }
  const cidr = net.cidr && !isUnknown(net.cidr) ? ipaddr.IPv4.parseCIDR(net.cidr) : undefined;
  const inSubnet = (a: ipaddr.IPv4) => !cidr || a.match(cidr);
  const special = (a: ipaddr.IPv4) =>
    cidr &&
    (a.toString() === ipaddr.IPv4.networkAddressFromCIDR(net.cidr!).toString() ||
      a.toString() === ipaddr.IPv4.broadcastAddressFromCIDR(net.cidr!).toString());
  for (const [path, a] of [
    ["start", start],
    ["end", end],
  ] as const) {
    if (!a) continue;
    if (!inSubnet(a)) problems.add(path, `${a} is outside the network's subnet ${net.cidr}`);
    else if (special(a)) problems.add(path, `${a} is the network or broadcast address of ${net.cidr}`);
  }
  if (start && end && toNumber(start) > toNumber(end)) problems.add("end", `${end} is before start ${start}`);
  if (
    start &&
    end &&
    net.gateway &&
    !isUnknown(net.gateway) &&
    ipaddr.IPv4.isValidFourPartDecimal(net.gateway)
  ) {
    const g = toNumber(ipaddr.IPv4.parse(net.gateway));
    if (g >= toNumber(start) && g <= toNumber(end))
      problems.add("start", `the range contains the gateway ${net.gateway}`);
  }

  const hosts: DhcpReservation[] = [];
  const macs = new Set<string>();
  const ips = new Set<string>();
  (raw.hosts ?? []).forEach((h, i) => {
    const p = `hosts[${i}]`;
    if (!h || typeof h !== "object") return problems.add(p, "must be { mac, ip, hostname? }");
    const before = problems.errors.length;
    if (typeof h.mac !== "string") problems.add(`${p}.mac`, "is required");
    else checkUnicastMac(h.mac, `${p}.mac`, problems);
    const ip = parseV4(h.ip, `${p}.ip`, problems);
    if (ip && !inSubnet(ip)) problems.add(`${p}.ip`, `${ip} is outside the network's subnet ${net.cidr}`);
    if (ip && net.gateway === ip.toString()) problems.add(`${p}.ip`, `${ip} is the gateway`);
    if (
      h.hostname !== undefined &&
      (typeof h.hostname !== "string" || !isDnsName(h.hostname) || h.hostname.includes("."))
    )
      problems.add(`${p}.hostname`, `"${h.hostname}" is not a valid host name (one DNS label)`);
    if (problems.errors.length !== before) return;
    const mac = (h.mac as string).toLowerCase();
    if (macs.has(mac)) problems.add(`${p}.mac`, `${mac} is reserved twice`);
    if (ips.has(ip!.toString())) problems.add(`${p}.ip`, `${ip} is reserved twice`);
    macs.add(mac);
    ips.add(ip!.toString());
    const r: DhcpReservation = { mac, ip: ip!.toString() };
    if (h.hostname) r.hostname = h.hostname;
    hosts.push(r);
  });
  if (!problems.ok || !start || !end) return { errors: problems.errors };
  return {
    spec: {
      name,
      start: start.toString(),
      end: end.toString(),
      size: toNumber(end) - toNumber(start) + 1,
      leaseTime,
      hosts,
    },
    errors: [],
  };
}

/** Ranges of one network must not overlap; only the host knows all of them. */
export function rangeOverlaps(a: DhcpRangeSpec, b: DhcpRangeSpec): boolean {
  const n = (s: string) => toNumber(ipaddr.IPv4.parse(s));
  return n(a.start) <= n(b.end) && n(b.start) <= n(a.end);
}

/** Whether every range still lies inside a (possibly changed) subnet. */
export function rangeInside(r: DhcpRangeSpec, cidr: string): boolean {
  const net = ipaddr.IPv4.parseCIDR(cidr);
  return ipaddr.IPv4.parse(r.start).match(net) && ipaddr.IPv4.parse(r.end).match(net);
}
