// CNAME and MX records in libvirt network XML. libvirt's <dns> has no element for either (only <forwarder>,
// <host>, <srv> and <txt>); what it has is its passthrough of dnsmasq options, <dnsmasq:options> in the
// namespace below (libvirt 5.6+), whose values libvirt appends to the network's dnsmasq.conf as they are.
// virtnet's records are dnsmasq's own cname= and mx-host= lines (render/dnsmasq.ts, dnsRecordOptions), so they go
// there, and come back from there.
import { CnameRecord, MxRecord } from "../model/networkDns";

export const DNSMASQ_NAMESPACE = "http://libvirt.org/schemas/network/dnsmasq/1.0";
/** The prefix virtnet's export binds to the namespace (an import resolves whatever prefix a file uses). */
export const DNSMASQ_PREFIX = "dnsmasq";

/**
 * The records one <dnsmasq:option value> holds, when it is a cname= or mx-host= line virtnet can keep:
 * `cname=<alias>[,<alias>...],<target>` (without dnsmasq's optional TTL) and `mx-host=<domain>,<host>[,<pref>]`
 * (a host is required: without one dnsmasq answers with its own host name). Anything else: undefined.
 */
export function recordsOfOption(value: string): { cname?: CnameRecord[]; mx?: MxRecord } | undefined {
  const m = /^(cname|mx-host)=(.*)$/.exec(value);
  if (!m) return undefined;
  const fields = m[2].split(",");
  if (fields.some((f) => f === "" || /\s/.test(f))) return undefined;
  if (m[1] === "cname") {
    const target = fields[fields.length - 1];
    if (fields.length < 2 || /^\d+$/.test(target)) return undefined;
    return { cname: fields.slice(0, -1).map((name) => ({ name, target })) };
  }
  const [domain, target, preference, ...rest] = fields;
  if (target === undefined || /^\d+$/.test(target) || rest.length) return undefined;
  if (preference === undefined) return { mx: { domain, target } };
  return /^\d+$/.test(preference) ? { mx: { domain, target, preference: Number(preference) } } : undefined;
}
