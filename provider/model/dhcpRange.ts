// DHCP ranges of a network: validation and the normalized form stored on the host.
import * as ipaddr from "ipaddr.js";
import {
  checkNoControlCharacters,
  checkSafeName,
  checkUnicastMac,
  isDnsName,
  isUnknown,
  parseStrictCidr,
  Problems,
  PropertyError,
} from "./validation";

export interface DhcpRangeInputs {
  name?: string;
  start?: string;
  end?: string;
  leaseTime?: string;
  hosts?: { mac?: string; duid?: string; ip?: string; hostname?: string }[];
}

/**
 * One reservation. IPv4 ranges reserve by `mac`; IPv6 ranges by `duid` (DHCPv6 names a client by its DUID,
 * not its MAC), by `hostname` (the name the client sends), or by both, as libvirt's <host id name ip>.
 */
export interface DhcpReservation {
  mac?: string;
  /** Lowercase hex bytes, two digits each, separated by colons. */
  duid?: string;
  ip: string;
  hostname?: string;
}

export interface DhcpRangeSpec {
  name: string;
  /** Absent in records written before IPv6 ranges existed: 4. */
  family?: 4 | 6;
  /**
   * Static-only DHCP (libvirt's <dhcp> with <host>s and no <range>): only the reservations get addresses;
   * start and end are then the network address, size 0.
   */
  static?: true;
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
  ipv6Cidr?: string;
  ipv6Gateway?: string;
}

export const DEFAULT_LEASE = "1h";
const LEASE = /^(\d+)([smhdw]?)$/;
const UNIT_SECONDS: Record<string, number> = { "": 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

function toNumber(a: ipaddr.IPv4): number {
  return a.octets.reduce((n, o) => n * 256 + o, 0);
}

const MIXED_FAMILIES = "start and end of a range are both IPv4 or both IPv6";
const IPV6_RESERVATION = "an IPv6 reservation goes on an IPv6 range (start and end IPv6, or hosts alone)";
const IPV4_RESERVATION = "an IPv4 reservation goes on an IPv4 range";
// A DUID is 2 to 130 bytes (RFC 8415: a 2-byte type and at most 128 bytes); dnsmasq reads "id:" with colons as hex.
const DUID = /^[0-9a-fA-F]{1,2}(:[0-9a-fA-F]{1,2}){1,129}$/;

/** A DUID in one spelling, so that "0:3" and "00:03" are one client. */
function normalDuid(duid: string): string {
  return duid
    .toLowerCase()
    .split(":")
    .map((b) => b.padStart(2, "0"))
    .join(":");
}

function checkHostname(h: { hostname?: unknown }, p: string, problems: Problems): void {
  if (
    h.hostname !== undefined &&
    (typeof h.hostname !== "string" || !isDnsName(h.hostname) || h.hostname.endsWith("."))
  )
    problems.add(`${p}.hostname`, `"${h.hostname}" is not a valid host name (DNS labels, no final dot)`);
}

/** Whether a range's reservations are IPv6 ones: the family of a static-only range (no start, no end). */
function hostsAreIpv6(hosts: DhcpRangeInputs["hosts"]): boolean {
  return (hosts ?? []).some(
    (h) =>
      h &&
      typeof h === "object" &&
      (h.duid !== undefined || (typeof h.ip === "string" && h.ip.includes(":"))),
  );
}

/** An IPv4 address; `ipv6Reason` says why an IPv6 one does not fit where this one is read. */
function parseV4(
  value: unknown,
  path: string,
  problems: Problems,
  ipv6Reason: string,
): ipaddr.IPv4 | undefined {
  if (typeof value !== "string" || !ipaddr.IPv4.isValidFourPartDecimal(value)) {
    if (typeof value === "string" && ipaddr.IPv6.isValid(value))
      problems.add(path, `"${value}" is an IPv6 address: ${ipv6Reason}`);
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
  const staticOnly = raw.start === undefined && raw.end === undefined;
  if ((typeof raw.start === "string" && raw.start.includes(":")) || (staticOnly && hostsAreIpv6(raw.hosts)))
    return buildRange6(raw, name, net, problems);
  if (staticOnly && !(raw.hosts ?? []).length)
    problems.add("start", "is required: a range needs start and end, or hosts alone (static-only DHCP)");
  if (staticOnly && (net.cidr === undefined || isUnknown(net.cidr)) && net.ipv6Cidr !== undefined)
    problems.add("hosts", "IPv4 reservations alone (static-only DHCP) need an IPv4 subnet on the network");
  const start = staticOnly ? undefined : parseV4(raw.start, "start", problems, MIXED_FAMILIES);
  const end = staticOnly ? undefined : parseV4(raw.end, "end", problems, MIXED_FAMILIES);
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
  // A malformed network reference is reported by the resource's check (network.cidr); here it just does not help.
  const parsed4 = net.cidr && !isUnknown(net.cidr) ? parseStrictCidr(net.cidr) : undefined;
  const cidr = parsed4 && parsed4[0].kind() === "ipv4" ? (parsed4 as [ipaddr.IPv4, number]) : undefined;
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
    if (h.duid !== undefined)
      problems.add(`${p}.duid`, "is for IPv6 ranges (DHCPv6): an IPv4 reservation is by mac");
    const ip = parseV4(h.ip, `${p}.ip`, problems, IPV6_RESERVATION);
    if (ip && !inSubnet(ip)) problems.add(`${p}.ip`, `${ip} is outside the network's subnet ${net.cidr}`);
    if (ip && net.gateway === ip.toString()) problems.add(`${p}.ip`, `${ip} is the gateway`);
    checkHostname(h, p, problems);
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
  if (staticOnly && problems.ok) {
    if (!cidr) return { errors: [] }; // the network's subnet is not known yet (preview)
    const network = ipaddr.IPv4.networkAddressFromCIDR(net.cidr!).toString();
    return {
      spec: { name, static: true, start: network, end: network, size: 0, leaseTime, hosts },
      errors: [],
    };
  }
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

function checkLease(value: unknown, problems: Problems): string {
  if (value === undefined || isUnknown(value)) return DEFAULT_LEASE;
  const m = typeof value === "string" ? LEASE.exec(value) : null;
  if (value === "infinite") return "infinite";
  if (!m)
    problems.add("leaseTime", `"${value}" is not a lease time like "3600", "30m", "1h", "7d" or "infinite"`);
  else if (Number(m[1]) * UNIT_SECONDS[m[2]] < 120)
    problems.add("leaseTime", "must be at least 2 minutes (dnsmasq's minimum)");
  else return value as string;
  return DEFAULT_LEASE;
}

/**
 * Stateful DHCPv6 ranges, and static-only ones (reservations alone). A reservation names its client by DUID,
 * by host name, or by both, as libvirt's IPv6 <host id name ip>; it never has a MAC.
 */
function buildRange6(raw: DhcpRangeInputs, name: string, net: RangeNetworkFacts, problems: Problems) {
  const parse = (v: unknown, path: string, ipv4Reason: string) => {
    if (typeof v === "string" && ipaddr.IPv6.isValid(v) && !v.includes("%")) return ipaddr.IPv6.parse(v);
    if (typeof v === "string" && ipaddr.IPv4.isValidFourPartDecimal(v))
      problems.add(path, `"${v}" is an IPv4 address: ${ipv4Reason}`);
    else problems.add(path, `"${v}" is not an IPv6 address`);
    return undefined;
  };
  const staticOnly = raw.start === undefined && raw.end === undefined;
  const start = staticOnly ? undefined : parse(raw.start, "start", MIXED_FAMILIES);
  const end = staticOnly ? undefined : parse(raw.end, "end", MIXED_FAMILIES);
  const leaseTime = checkLease(raw.leaseTime, problems);
  const parsed6 = net.ipv6Cidr && !isUnknown(net.ipv6Cidr) ? parseStrictCidr(net.ipv6Cidr) : undefined;
  const cidr = parsed6 && parsed6[0].kind() === "ipv6" ? (parsed6 as [ipaddr.IPv6, number]) : undefined;
  if (net.ipv6Cidr === undefined && net.cidr !== undefined)
    problems.add(
      staticOnly ? "hosts" : "start",
      `an IPv6 ${staticOnly ? "reservation" : "range"} needs an IPv6 subnet on the network (ipv6.cidr)`,
    );
  const big = (a: ipaddr.IPv6) => a.parts.reduce((n, p) => n * 65536n + BigInt(p), 0n);
  for (const [path, a] of [
    ["start", start],
    ["end", end],
  ] as const)
    if (a && cidr && !a.match(cidr))
      problems.add(path, `${a} is outside the network's subnet ${net.ipv6Cidr}`);
  if (start && end && big(start) > big(end)) problems.add("end", `${end} is before start ${start}`);
  if (start && end && net.ipv6Gateway && ipaddr.IPv6.isValid(net.ipv6Gateway)) {
    const g = big(ipaddr.IPv6.parse(net.ipv6Gateway));
    if (g >= big(start) && g <= big(end))
      problems.add("start", `the range contains the gateway ${net.ipv6Gateway}`);
  }

  const hosts: DhcpReservation[] = [];
  const seen = { duid: new Set<string>(), ip: new Set<string>(), hostname: new Set<string>() };
  (raw.hosts ?? []).forEach((h, i) => {
    const p = `hosts[${i}]`;
    if (!h || typeof h !== "object") return problems.add(p, "must be { duid?, hostname?, ip }");
    const before = problems.errors.length;
    if (h.mac !== undefined)
      problems.add(`${p}.mac`, "DHCPv6 names a client by its DUID, not its MAC: give duid, hostname or both");
    else if (h.duid === undefined && h.hostname === undefined)
      problems.add(
        p,
        "an IPv6 reservation needs duid, hostname or both (the client's DUID, or the name it sends)",
      );
    if (h.duid !== undefined && (typeof h.duid !== "string" || !DUID.test(h.duid)))
      problems.add(
        `${p}.duid`,
        `"${h.duid}" is not a DUID (2 to 130 hex bytes separated by colons, like 00:03:00:01:52:54:00:aa:00:01)`,
      );
    const ip = parse(h.ip, `${p}.ip`, IPV4_RESERVATION);
    if (ip && cidr && !ip.match(cidr))
      problems.add(`${p}.ip`, `${ip} is outside the network's subnet ${net.ipv6Cidr}`);
    if (
      ip &&
      net.ipv6Gateway &&
      ipaddr.IPv6.isValid(net.ipv6Gateway) &&
      big(ip) === big(ipaddr.IPv6.parse(net.ipv6Gateway))
    )
      problems.add(`${p}.ip`, `${ip} is the gateway`);
    checkHostname(h, p, problems);
    if (problems.errors.length !== before) return;
    const r: DhcpReservation = { ip: ip!.toString() };
    if (h.duid !== undefined) r.duid = normalDuid(h.duid);
    if (h.hostname !== undefined) r.hostname = h.hostname;
    if (r.duid && seen.duid.has(r.duid)) problems.add(`${p}.duid`, `${r.duid} is reserved twice`);
    if (seen.ip.has(r.ip)) problems.add(`${p}.ip`, `${r.ip} is reserved twice`);
    // A reservation by name alone is found by the name: two of them for one name would be one client.
    if (!r.duid && seen.hostname.has(r.hostname!.toLowerCase()))
      problems.add(`${p}.hostname`, `${r.hostname} is reserved twice`);
    if (r.duid) seen.duid.add(r.duid);
    else seen.hostname.add(r.hostname!.toLowerCase());
    seen.ip.add(r.ip);
    hosts.push(r);
  });
  if (!problems.ok) return { errors: problems.errors };
  if (staticOnly) {
    if (!hosts.length) return { errors: problems.errors };
    if (!cidr) return { errors: [] as PropertyError[] }; // the network's subnet is not known yet (preview)
    const network = cidr[0].toString();
    const spec: DhcpRangeSpec = {
      name,
      family: 6,
      static: true,
      start: network,
      end: network,
      size: 0,
      leaseTime,
      hosts,
    };
    return { spec, errors: [] as PropertyError[] };
  }
  if (!start || !end) return { errors: problems.errors };
  const size = Number(big(end) - big(start) + 1n > 1000000n ? 1000000n : big(end) - big(start) + 1n);
  const spec: DhcpRangeSpec = {
    name,
    family: 6,
    start: start.toString(),
    end: end.toString(),
    size,
    leaseTime,
    hosts,
  };
  return { spec, errors: [] as PropertyError[] };
}

/** Ranges of one network must not overlap; only the host knows all of them. */
export function rangeOverlaps(a: DhcpRangeSpec, b: DhcpRangeSpec): boolean {
  if ((a.family ?? 4) !== (b.family ?? 4) || a.static || b.static) return false;
  const n = (s: string) =>
    ipaddr
      .parse(s)
      .toByteArray()
      .reduce((v, x) => v * 256n + BigInt(x), 0n);
  return n(a.start) <= n(b.end) && n(b.start) <= n(a.end);
}

/** Whether a range still lies inside its family's (possibly changed) subnet; false when there is none. */
export function rangeInside(r: DhcpRangeSpec, cidr: string | undefined): boolean {
  if (!cidr) return false;
  const net = ipaddr.parseCIDR(cidr);
  return ipaddr.parse(r.start).match(net) && ipaddr.parse(r.end).match(net);
}

/**
 * The reservations of `range` that another range of the same network already holds (same MAC, same DUID, or
 * same IP): dnsmasq would get two `dhcp-host` lines for one client, or hand one address to two machines.
 */
export function reservationClashes(range: DhcpRangeSpec, others: DhcpRangeSpec[]): string[] {
  const clashes: string[] = [];
  range.hosts.forEach((h, i) => {
    for (const o of others) {
      if (o.name === range.name) continue;
      const sameMac = (x: DhcpReservation) => h.mac !== undefined && x.mac === h.mac;
      const sameDuid = (x: DhcpReservation) => h.duid !== undefined && x.duid === h.duid;
      const same = o.hosts.find((x) => sameMac(x) || sameDuid(x) || x.ip === h.ip);
      if (!same) continue;
      const what = sameMac(same) ? `MAC ${h.mac}` : sameDuid(same) ? `DUID ${h.duid}` : `IP ${h.ip}`;
      clashes.push(
        `hosts[${i}]: ${what} is already reserved by DhcpRange "${o.name}" of this network; ` +
          `DhcpRange "${range.name}" cannot reserve it too (one reservation per MAC, per DUID and per IP in a network)`,
      );
    }
  });
  return clashes;
}
