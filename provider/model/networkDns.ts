// A network's DNS inputs (forwarders, host records, SRV and TXT records), validated and normalized.
import * as ipaddr from "ipaddr.js";
import { NetworkArgs, SrvArgs, Unchecked } from "./inputs";
import { checkInteger, isDnsName, parseStrictIp, Problems } from "./validation";

/** A validated SRV record: the fields as a user writes them. */
export type SrvRecord = SrvArgs;

export interface DnsSpec {
  enabled: boolean;
  forwarders: { address?: string; domain?: string }[];
  hosts: { ip: string; hostnames: string[] }[];
  srv?: SrvRecord[];
  txt?: { name: string; value: string }[];
}

export function checkDns(raw: Unchecked<NetworkArgs>["dns"], problems: Problems): DnsSpec {
  const dns: DnsSpec = { enabled: true, forwarders: [], hosts: [] };
  if (raw === undefined) return dns;
  if (raw.enabled !== undefined) {
    if (typeof raw.enabled !== "boolean") problems.add("dns.enabled", "must be true or false");
    else dns.enabled = raw.enabled;
  }
  (raw.forwarders ?? []).forEach((f, i) => {
    const path = `dns.forwarders[${i}]`;
    const entry = typeof f === "string" ? { address: f } : f;
    if (!entry || typeof entry !== "object")
      return problems.add(path, "must be an address or { address, domain }");
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
    if (out.address === undefined && entry.address === undefined)
      problems.add(`${path}.address`, "is required");
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
  return dns;
}
