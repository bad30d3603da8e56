// A network's DNS inputs (forwarders, host records, SRV, TXT, CNAME and MX records), validated and normalized.
import * as ipaddr from "ipaddr.js";
import { CnameArgs, MxArgs, NetworkArgs, SrvArgs, Unchecked } from "./inputs";
import { checkInteger, isDnsName, parseStrictIp, Problems } from "./validation";

/** A validated SRV record: the fields as a user writes them. */
export type SrvRecord = SrvArgs;

export interface DnsSpec {
  enabled: boolean;
  /** Absent: true (libvirt's default; records from before it existed kept plain names local). */
  forwardPlainNames?: false;
  /** Absent: false. */
  etcHosts?: true;
  forwarders: { address?: string; domain?: string }[];
  hosts: { ip: string; hostnames: string[] }[];
  srv?: SrvRecord[];
  txt?: { name: string; value: string }[];
  /** dnsmasq's cname=: `name` is an alias of `target`, a name the network's DNS knows itself. */
  cname?: CnameRecord[];
  /** dnsmasq's mx-host=: mail for `domain` goes to `target` (dnsmasq's default preference: 1). */
  mx?: MxRecord[];
}

export type CnameRecord = CnameArgs;
export type MxRecord = MxArgs;

export function checkDns(raw: Unchecked<NetworkArgs>["dns"], problems: Problems): DnsSpec {
  const dns: DnsSpec = { enabled: true, forwarders: [], hosts: [] };
  if (raw === undefined) return dns;
  if (raw.enabled !== undefined) {
    if (typeof raw.enabled !== "boolean") problems.add("dns.enabled", "must be true or false");
    else dns.enabled = raw.enabled;
  }
  if (raw.forwardPlainNames !== undefined) {
    if (typeof raw.forwardPlainNames !== "boolean")
      problems.add("dns.forwardPlainNames", "must be true or false");
    else if (!raw.forwardPlainNames) dns.forwardPlainNames = false;
  }
  if (raw.etcHosts !== undefined) {
    if (typeof raw.etcHosts !== "boolean") problems.add("dns.etcHosts", "must be true or false");
    else if (raw.etcHosts) dns.etcHosts = true;
  }
  (raw.forwarders ?? []).forEach((f, i) => {
    const path = `dns.forwarders[${i}]`;
    const entry = typeof f === "string" ? { address: f } : f;
    if (!entry || typeof entry !== "object")
      return problems.add(path, "must be an address, { address, domain? } or { domain }");
    const out: { address?: string; domain?: string } = {};
    if (entry.address !== undefined) {
      const addr = parseStrictIp(entry.address);
      if (!addr) problems.add(`${path}.address`, `"${entry.address}" is not an IPv4 or IPv6 address`);
      else out.address = addr.toString();
    }
    if (entry.domain !== undefined) {
      if (typeof entry.domain !== "string" || !isDnsName(entry.domain))
        problems.add(`${path}.domain`, `"${entry.domain}" is not a DNS domain name`);
      else out.domain = entry.domain;
    }
    if (entry.address === undefined && entry.domain === undefined)
      problems.add(
        `${path}.address`,
        "is required (or a domain alone: its queries go to the host's resolvers)",
      );
    dns.forwarders.push(out);
  });
  (raw.hosts ?? []).forEach((h, i) => {
    const path = `dns.hosts[${i}]`;
    if (!h || typeof h !== "object") return problems.add(path, "must be { ip, hostnames }");
    const ipOk = parseStrictIp(h.ip) !== undefined;
    if (!ipOk) problems.add(`${path}.ip`, `"${h.ip}" is not an IPv4 or IPv6 address`);
    if (!Array.isArray(h.hostnames) || h.hostnames.length === 0)
      problems.add(`${path}.hostnames`, "must list at least one host name");
    else
      h.hostnames.forEach((n, j) => {
        if (typeof n !== "string" || !isDnsName(n))
          problems.add(`${path}.hostnames[${j}]`, `"${n}" is not a valid host name`);
      });
    if (ipOk && Array.isArray(h.hostnames))
      dns.hosts.push({ ip: ipaddr.parse(h.ip as string).toString(), hostnames: h.hostnames as string[] });
  });
  (raw.srv ?? []).forEach((r, i) => {
    const path = `dns.srv[${i}]`;
    if (!r || typeof r !== "object") return problems.add(path, "must be { service, protocol, ... }");
    const before = problems.errors.length;
    const label = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;
    if (typeof r.service !== "string" || !label.test(r.service) || r.service.length > 15)
      problems.add(
        `${path}.service`,
        `"${r.service}" is not a service name (letters, digits, '-', at most 15)`,
      );
    if (r.protocol !== "tcp" && r.protocol !== "udp")
      problems.add(`${path}.protocol`, 'must be "tcp" or "udp"');
    if (r.domain !== undefined && (typeof r.domain !== "string" || !isDnsName(r.domain)))
      problems.add(`${path}.domain`, `"${r.domain}" is not a DNS domain name`);
    if (r.target !== undefined && r.target !== "." && (typeof r.target !== "string" || !isDnsName(r.target)))
      problems.add(`${path}.target`, `"${r.target}" is not a host name (or "." for none)`);
    if (
      r.target === undefined &&
      (r.port !== undefined || r.priority !== undefined || r.weight !== undefined)
    )
      problems.add(`${path}.target`, "is required when port, priority or weight is set");
    if (r.port !== undefined) checkInteger(r.port, `${path}.port`, problems, 0, 65535);
    if (r.priority !== undefined) checkInteger(r.priority, `${path}.priority`, problems, 0, 65535);
    if (r.weight !== undefined) checkInteger(r.weight, `${path}.weight`, problems, 0, 65535);
    if (problems.errors.length !== before) return;
    const rec: SrvRecord = { service: r.service as string, protocol: r.protocol as "tcp" | "udp" };
    for (const k of ["domain", "target", "port", "priority", "weight"] as const)
      if (r[k] !== undefined) (rec as any)[k] = r[k];
    (dns.srv ??= []).push(rec);
  });
  (raw.txt ?? []).forEach((t, i) => {
    const path = `dns.txt[${i}]`;
    if (!t || typeof t !== "object") return problems.add(path, "must be { name, value }");
    const before = problems.errors.length;
    if (typeof t.name !== "string" || !isDnsName(t.name))
      problems.add(`${path}.name`, `"${t.name}" is not a DNS name`);
    // dnsmasq reads the value between double quotes: keep it to printable ASCII without quote or backslash.
    if (typeof t.value !== "string" || !/^[\x20-\x7e]{0,255}$/.test(t.value) || /["\\]/.test(t.value))
      problems.add(`${path}.value`, 'must be at most 255 printable ASCII characters, without " or \\');
    if (problems.errors.length === before)
      (dns.txt ??= []).push({ name: t.name as string, value: t.value as string });
  });
  checkCnames(raw.cname, dns, problems);
  checkMx(raw.mx, dns, problems);
  return dns;
}

function checkCnames(
  raw: NonNullable<Unchecked<NetworkArgs>["dns"]>["cname"],
  dns: DnsSpec,
  problems: Problems,
) {
  const hostNames = new Set(dns.hosts.flatMap((h) => h.hostnames.map((n) => n.toLowerCase())));
  const seen = new Set<string>();
  (raw ?? []).forEach((c, i) => {
    const path = `dns.cname[${i}]`;
    if (!c || typeof c !== "object") return problems.add(path, "must be { name, target }");
    const before = problems.errors.length;
    if (typeof c.name !== "string" || !isDnsName(c.name))
      problems.add(`${path}.name`, `"${c.name}" is not a DNS name`);
    if (typeof c.target !== "string" || !isDnsName(c.target))
      problems.add(`${path}.target`, `"${c.target}" is not a DNS name`);
    if (problems.errors.length !== before) return;
    const name = (c.name as string).toLowerCase();
    // A name with a CNAME has no other records (RFC 1034 3.6.2).
    if (name === (c.target as string).toLowerCase()) problems.add(`${path}.target`, "is the name itself");
    else if (seen.has(name)) problems.add(`${path}.name`, `${c.name} has a CNAME already`);
    else if (hostNames.has(name))
      problems.add(
        `${path}.name`,
        `${c.name} has an address in dns.hosts: a name with a CNAME has no other records`,
      );
    seen.add(name);
    if (problems.errors.length === before)
      (dns.cname ??= []).push({ name: c.name as string, target: c.target as string });
  });
}

function checkMx(raw: NonNullable<Unchecked<NetworkArgs>["dns"]>["mx"], dns: DnsSpec, problems: Problems) {
  (raw ?? []).forEach((m, i) => {
    const path = `dns.mx[${i}]`;
    if (!m || typeof m !== "object") return problems.add(path, "must be { domain, target, preference? }");
    const before = problems.errors.length;
    if (typeof m.domain !== "string" || !isDnsName(m.domain))
      problems.add(`${path}.domain`, `"${m.domain}" is not a DNS domain name`);
    if (typeof m.target !== "string" || !isDnsName(m.target))
      problems.add(`${path}.target`, `"${m.target}" is not a host name`);
    if (m.preference !== undefined) checkInteger(m.preference, `${path}.preference`, problems, 0, 65535);
    if (problems.errors.length !== before) return;
    const rec: MxRecord = { domain: m.domain as string, target: m.target as string };
    if (m.preference !== undefined) rec.preference = m.preference;
    (dns.mx ??= []).push(rec);
  });
}
