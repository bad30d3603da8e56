// libvirt network XML (`virsh net-dumpxml`) -> virtnet arguments: a VirtualNetwork, its DhcpRanges and its
// StaticRoutes. What virtnet cannot represent is reported, one warning per element or attribute; values
// that virtnet's own validation refuses are errors naming the element they came from.
import * as ipaddr from "ipaddr.js";
import { buildRangeSpec, DhcpRangeSpec, rangeOverlaps } from "../model/dhcpRange";
import { buildRouteSpec, RouteSpec } from "../model/staticRoute";
import { Mode } from "../model/modes";
import { buildNetworkSpec, NetworkSpec } from "../model/network";
import { CnameRecord, MxRecord, SrvRecord } from "../model/networkDns";
import { PropertyError } from "../model/validation";
import { DNSMASQ_NAMESPACE, recordsOfOption } from "./dnsmasqOptions";
import {
  attr,
  childrenNamed,
  describe,
  describeIn,
  LibvirtXmlError,
  parseXml,
  text,
  unread,
  useAll,
  XmlNode,
} from "./xml";

/** VirtualNetwork arguments (without `connection`): only what the XML says, plus libvirt's own defaults. */
export interface LibvirtNetworkArgs {
  name: string;
  mode: Mode;
  ipv4?: { cidr: string; gateway: string };
  ipv6?: { cidr: string; gateway: string };
  forwardDevice?: string;
  nat?: {
    addressRange?: { start: string; end: string };
    portRange?: { start: number; end: number };
    ipv6?: boolean;
  };
  /** stp is set except in mode "bridge" (the host's bridge): libvirt's default is on, virtnet's is off. */
  bridge: { name?: string; stp?: boolean; delay?: number; mtu?: number; macAddress?: string };
  domain?: { name: string; localOnly?: boolean };
  dns?: {
    enabled?: boolean;
    /** A domain without address: that domain's queries go to the host's resolvers. */
    forwarders?: { address?: string; domain?: string }[];
    forwardPlainNames?: boolean;
    hosts?: { ip: string; hostnames: string[] }[];
    srv?: LibvirtSrvRecord[];
    txt?: { name: string; value: string }[];
    /** From <dnsmasq:options> (libvirt has no element for them): cname= and mx-host= lines. */
    cname?: CnameRecord[];
    mx?: MxRecord[];
  };
  /** The other <dnsmasq:options> lines, as they are (virtnet's dnsmasqOptions). */
  dnsmasqOptions?: string[];
  /** The IPv4 <ip>'s <tftp root> and its <dhcp>'s <bootp file server>. */
  tftp?: { root: string };
  bootp?: { file: string; server?: string };
}

/** A DNS SRV record as libvirt's <srv> has it: the same fields as virtnet's. */
export type LibvirtSrvRecord = SrvRecord;

/** IPv4: by mac. IPv6 (<host id name ip>): by duid (libvirt's id), by hostname, or by both. */
export interface LibvirtDhcpReservation {
  mac?: string;
  duid?: string;
  ip: string;
  hostname?: string;
}

/**
 * DhcpRange arguments (without `network`), IPv4 or IPv6. libvirt keeps reservations per <ip>, virtnet per
 * range: they go on the first range of their family.
 */
export interface LibvirtDhcpRangeArgs {
  name: string;
  /** Both absent: static-only DHCP, from a <dhcp> with <host>s and no <range>. */
  start?: string;
  end?: string;
  /** dnsmasq form: "3600" (seconds), "30m", "1h", "infinite"; absent = virtnet's default "1h". */
  leaseTime?: string;
  hosts?: LibvirtDhcpReservation[];
}

/** StaticRoute arguments (without `network`): routes via the network, like libvirt's <route>. */
export interface LibvirtRouteArgs {
  destination: string;
  gateway: string;
  /** Always set: libvirt's default is 1, a StaticRoute's 0. */
  metric: number;
}

export interface LibvirtImport {
  network: LibvirtNetworkArgs;
  ranges: LibvirtDhcpRangeArgs[];
  routes: LibvirtRouteArgs[];
  /** One per element or attribute that virtnet does not support (and so did not import), in file order. */
  warnings: string[];
  /** What was read but needs no action: ignored identifiers, libvirt defaults made explicit. */
  notes: string[];
}

/** The import, and the virtnet specs it validated into (what the provider would build). */
export interface LibvirtImportDetail {
  imported: LibvirtImport;
  spec: NetworkSpec;
  rangeSpecs: DhcpRangeSpec[];
  routeSpecs: RouteSpec[];
}

const UNSUPPORTED_FORWARD: Record<string, string> = {
  passthrough: "macvtap passthrough of a host interface",
  private: "macvtap private mode",
  vepa: "macvtap VEPA mode",
  hostdev: "SR-IOV host device assignment",
};

/** The kernel's minimum bridge forward delay (seconds) while STP is on. */
const MIN_STP_DELAY = 2;

const LEASE_UNITS: Record<string, string> = { seconds: "", minutes: "m", hours: "h" };

/** The classful prefix that libvirt assumes for an IPv4 address given without netmask or prefix. */
function classfulPrefix(a: ipaddr.IPv4): number | undefined {
  const first = a.octets[0];
  if (first < 128) return 8;
  if (first < 192) return 16;
  if (first < 224) return 24;
  return undefined;
}

class Importer {
  readonly errors: string[] = [];
  private readonly warned: { node: XmlNode; message: string }[] = [];
  private readonly noted: { node: XmlNode; message: string }[] = [];
  /** Where each virtnet network property came from, for errors from virtnet's validation. */
  readonly origins = new Map<string, XmlNode>();

  err(node: XmlNode, message: string): void {
    this.errors.push(`${describe(node)}: ${message}`);
  }

  /** Reports an element (with everything in it) or one of its attributes as not imported. */
  warn(node: XmlNode, message: string, attribute?: string): void {
    if (attribute === undefined) useAll(node);
    this.warned.push({ node, message: `${describeIn(node)}: ${message}` });
  }

  note(node: XmlNode, message: string): void {
    this.noted.push({ node, message: `${describeIn(node)}: ${message}` });
  }

  warnings(root: XmlNode): string[] {
    const all = [...this.warned, ...unread(root)];
    return all.sort((a, b) => a.node.order - b.node.order).map((w) => w.message);
  }

  notes(): string[] {
    return [...this.noted].sort((a, b) => a.node.order - b.node.order).map((n) => n.message);
  }

  /** The single child of that name; a second one is an error. */
  one(parent: XmlNode, name: string): XmlNode | undefined {
    const all = childrenNamed(parent, name);
    if (all.length > 1) this.err(all[1], `more than one <${name}> in <${parent.name}>`);
    return all[0];
  }

  choice(node: XmlNode, name: string, values: Record<string, boolean>): boolean | undefined {
    const v = attr(node, name);
    if (v === undefined) return undefined;
    if (!Object.hasOwn(values, v)) {
      this.err(
        node,
        `${name} must be ${Object.keys(values)
          .map((k) => `'${k}'`)
          .join(" or ")}, not '${v}'`,
      );
      return undefined;
    }
    return values[v];
  }

  yesNo(node: XmlNode, name: string): boolean | undefined {
    return this.choice(node, name, { yes: true, no: false });
  }

  uint(node: XmlNode, name: string, required = false): number | undefined {
    const v = attr(node, name);
    if (v === undefined) {
      if (required) this.err(node, `attribute ${name} is required`);
      return undefined;
    }
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) {
      this.err(node, `${name} must be a non-negative integer, not '${v}'`);
      return undefined;
    }
    return Number(v);
  }

  required(node: XmlNode, name: string): string | undefined {
    const v = attr(node, name);
    if (v === undefined) this.err(node, `attribute ${name} is required`);
    return v;
  }

  /**
   * An IPv4 address with its netmask or prefix (libvirt's classful default when neither is given). For an
   * <ip>, the CIDR is the subnet the address is on; for a <route> (`asGiven`), it is the address as written.
   */
  subnet4(node: XmlNode, name: string, asGiven = false): { address: string; cidr: string } | undefined {
    const v = this.required(node, name);
    if (v === undefined) return undefined;
    if (!ipaddr.IPv4.isValidFourPartDecimal(v)) {
      this.err(node, `${name} '${v}' is not an IPv4 address`);
      return undefined;
    }
    const address = ipaddr.IPv4.parse(v);
    const netmask = attr(node, "netmask");
    const prefix = attr(node, "prefix");
    let len: number | undefined;
    if (netmask !== undefined && prefix !== undefined) this.err(node, "give netmask or prefix, not both");
    else if (prefix !== undefined) {
      if (!/^\d{1,2}$/.test(prefix) || Number(prefix) > 32)
        this.err(node, `prefix must be an integer from 0 to 32, not '${prefix}'`);
      else len = Number(prefix);
    } else if (netmask !== undefined) {
      const bits = ipaddr.IPv4.isValidFourPartDecimal(netmask)
        ? ipaddr.IPv4.parse(netmask).prefixLengthFromSubnetMask()
        : null;
      if (bits === null) this.err(node, `netmask '${netmask}' is not a contiguous IPv4 netmask`);
      else len = bits;
    } else {
      len = classfulPrefix(address);
      if (len === undefined) this.err(node, "netmask or prefix is required");
      else this.note(node, `no netmask or prefix: libvirt's classful default /${len} is used`);
    }
    if (len === undefined) return undefined;
    const net = asGiven || len === 0 ? address : ipaddr.IPv4.networkAddressFromCIDR(`${address}/${len}`);
    return { address: address.toString(), cidr: `${net}/${len}` };
  }

  /** An IPv6 address with its prefix (libvirt's default /64 when none is given); see subnet4. */
  subnet6(node: XmlNode, name: string, asGiven = false): { address: string; cidr: string } | undefined {
    const v = this.required(node, name);
    if (v === undefined) return undefined;
    if (!ipaddr.IPv6.isValid(v) || v.includes("%")) {
      this.err(node, `${name} '${v}' is not an IPv6 address`);
      return undefined;
    }
    const address = ipaddr.IPv6.parse(v);
    if (attr(node, "netmask") !== undefined) {
      this.err(node, "an IPv6 address takes prefix, not netmask");
      return undefined;
    }
    const prefix = attr(node, "prefix");
    let len = 64;
    if (prefix === undefined) this.note(node, "no prefix: libvirt's default /64 for IPv6 is used");
    else if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > 128) {
      this.err(node, `prefix must be an integer from 0 to 128, not '${prefix}'`);
      return undefined;
    } else len = Number(prefix);
    const net = asGiven || len === 0 ? address : ipaddr.IPv6.networkAddressFromCIDR(`${address}/${len}`);
    return { address: address.toString(), cidr: `${net}/${len}` };
  }

  /** libvirt's <lease expiry='N' unit='seconds|minutes|hours'/> (unit defaults to minutes; 0 = infinite). */
  lease(node: XmlNode): string | undefined {
    const expiry = this.uint(node, "expiry", true);
    const unit = attr(node, "unit") ?? "minutes";
    if (!Object.hasOwn(LEASE_UNITS, unit)) {
      this.err(node, `unit must be 'seconds', 'minutes' or 'hours', not '${unit}'`);
      return undefined;
    }
    if (expiry === undefined) return undefined;
    return expiry === 0 ? "infinite" : `${expiry}${LEASE_UNITS[unit]}`;
  }
}

/** The address family of an <ip> or <route>: its family attribute, else what its address looks like. */
function familyOf(im: Importer, node: XmlNode): 4 | 6 | undefined {
  const family = attr(node, "family");
  if (family === "ipv4") return 4;
  if (family === "ipv6") return 6;
  if (family !== undefined) {
    im.err(node, `family must be 'ipv4' or 'ipv6', not '${family}'`);
    return undefined;
  }
  return node.attrs.find(([k]) => k === "address")?.[1].includes(":") ? 6 : 4;
}

/** Where a virtnet property came from: the longest registered prefix of its path. */
function originOf(origins: Map<string, XmlNode>, property: string, fallback: XmlNode): XmlNode {
  let p = property;
  for (;;) {
    const hit = origins.get(p);
    if (hit) return hit;
    const cut = Math.max(p.lastIndexOf("."), p.lastIndexOf("["));
    if (cut <= 0) return fallback;
    p = p.slice(0, cut);
  }
}

function validationErrors(
  errors: PropertyError[],
  origins: Map<string, XmlNode>,
  fallback: XmlNode,
  prefix = "",
): string[] {
  return errors.map(
    (e) =>
      `${describe(originOf(origins, e.property, fallback))}: ${e.reason} (virtnet ${prefix}${e.property})`,
  );
}

/** The CNAME and MX records in <dnsmasq:options> (whatever prefix the file binds to libvirt's dnsmasq
 * namespace), added to `dns`; every other dnsmasq option goes to `options` (dnsmasqOptions) as it is. */
function dnsmasqRecords(
  im: Importer,
  root: XmlNode,
  dns: LibvirtNetworkArgs["dns"],
  options: string[],
): LibvirtNetworkArgs["dns"] {
  const ns = (node: XmlNode, prefix: string) => node.attrs.find(([k]) => k === `xmlns:${prefix}`)?.[1];
  for (const node of root.children) {
    const [prefix, local] = node.name.split(":");
    if (local !== "options" || (ns(node, prefix) ?? ns(root, prefix)) !== DNSMASQ_NAMESPACE) continue;
    node.used = true;
    for (const o of childrenNamed(node, `${prefix}:option`)) {
      const value = im.required(o, "value");
      if (value === undefined) continue;
      const records = recordsOfOption(value);
      if (!records) {
        im.origins.set(`dnsmasqOptions[${options.length}]`, o);
        options.push(value);
        continue;
      }
      dns ??= {};
      for (const c of records.cname ?? []) {
        im.origins.set(`dns.cname[${dns.cname?.length ?? 0}]`, o);
        (dns.cname ??= []).push(c);
      }
      if (records.mx) {
        im.origins.set(`dns.mx[${dns.mx?.length ?? 0}]`, o);
        (dns.mx ??= []).push(records.mx);
      }
    }
  }
  return dns;
}

/** Imports a libvirt network definition; throws a LibvirtXmlError listing every problem. */
export function fromLibvirtXml(xml: string): LibvirtImport {
  return importLibvirtNetwork(xml).imported;
}

export function importLibvirtNetwork(xml: string): LibvirtImportDetail {
  const root = parseXml(xml);
  if (root.name !== "network")
    throw new LibvirtXmlError([
      `the root element is <${root.name}>, not <network>: this is not a libvirt network definition`,
    ]);
  root.used = true;
  const im = new Importer();

  // Attributes of <network> itself.
  if (attr(root, "connections") !== undefined)
    im.note(root, "connections is libvirt's count of attached guests, not configuration: ignored");
  const guestIpv6 = im.yesNo(root, "ipv6"); // reported once the <ip> elements are known

  // <name>, <uuid>
  const nameNode = im.one(root, "name");
  let name = "";
  if (!nameNode) im.err(root, "<name> is required");
  else {
    name = text(nameNode);
    im.origins.set("name", nameNode);
    if (!name) im.err(nameNode, "the network name is empty");
  }
  const uuid = im.one(root, "uuid");
  if (uuid) {
    text(uuid);
    im.note(uuid, "ignored: virtnet identifies a network by its host and name");
  }

  // <bridge>, <mtu>, <mac>; mode 'bridge' names a bridge of the host, with none of virtnet's settings.
  const existingBridge = childrenNamed(root, "forward").some((f) => attr(f, "mode") === "bridge");
  const bridge: LibvirtNetworkArgs["bridge"] = { stp: true };
  const bridgeNode = im.one(root, "bridge");
  if (bridgeNode && existingBridge) {
    im.origins.set("bridge", bridgeNode);
    im.origins.set("bridge.name", bridgeNode);
    const bname = attr(bridgeNode, "name");
    if (bname !== undefined) bridge.name = bname;
  } else if (existingBridge) im.origins.set("bridge.name", root);
  else if (bridgeNode) {
    im.origins.set("bridge", bridgeNode);
    const bname = attr(bridgeNode, "name");
    if (bname !== undefined) bridge.name = bname;
    const stp = im.choice(bridgeNode, "stp", { on: true, off: false });
    if (stp !== undefined) bridge.stp = stp;
    else im.note(bridgeNode, "no stp: libvirt's default stp='on' is kept (virtnet bridge.stp: true)");
    const delay = im.uint(bridgeNode, "delay");
    if (delay !== undefined) bridge.delay = delay;
  } else im.note(root, "no <bridge>: libvirt's default stp='on' is kept (virtnet bridge.stp: true)");
  // With STP the kernel raises a forward delay below 2 s to 2 s (libvirt's default stp='on' delay='0' runs so).
  if (!existingBridge && bridge.stp && (bridge.delay ?? 0) < MIN_STP_DELAY) {
    im.note(
      bridgeNode ?? root,
      `forward delay ${bridge.delay ?? 0} with STP: the kernel's minimum with STP, ${MIN_STP_DELAY} s, is what runs (virtnet bridge.delay: ${MIN_STP_DELAY})`,
    );
    bridge.delay = MIN_STP_DELAY;
  }
  const mtu = im.one(root, "mtu");
  if (mtu) {
    im.origins.set("bridge.mtu", mtu);
    const size = im.uint(mtu, "size", true);
    if (size !== undefined) bridge.mtu = size;
  }
  const mac = im.one(root, "mac");
  if (mac) {
    im.origins.set("bridge.macAddress", mac);
    const address = im.required(mac, "address");
    if (address !== undefined) bridge.macAddress = address;
  }

  // <domain>
  let domain: LibvirtNetworkArgs["domain"];
  const domainNode = im.one(root, "domain");
  if (domainNode) {
    im.origins.set("domain", domainNode);
    const dname = im.required(domainNode, "name");
    const localOnly = im.yesNo(domainNode, "localOnly");
    if (dname !== undefined) domain = localOnly === undefined ? { name: dname } : { name: dname, localOnly };
  }

  // <forward>
  let mode: Mode = "isolated";
  let forwardDevice: string | undefined;
  let nat: LibvirtNetworkArgs["nat"];
  const forward = im.one(root, "forward");
  if (forward) {
    im.origins.set("mode", forward);
    im.origins.set("forwardDevice", forward);
    const m = attr(forward, "mode");
    if (m === undefined) {
      mode = "nat";
      im.note(forward, "no mode: libvirt's default mode 'nat' is used");
    } else if (m === "nat" || m === "route" || m === "open" || m === "bridge") mode = m;
    else if (m === "none") mode = "isolated";
    else if (Object.hasOwn(UNSUPPORTED_FORWARD, m))
      im.err(
        forward,
        `mode '${m}' (${UNSUPPORTED_FORWARD[m]}) is a libvirt forward mode that virtnet does not support yet`,
      );
    else
      im.err(
        forward,
        `mode '${m}' is not a libvirt forward mode (nat, route, open, bridge, or no <forward>)`,
      );
    const dev = attr(forward, "dev");
    if (dev !== undefined) forwardDevice = dev;
    // libvirt lists the dev of nat/route again as the only <interface>.
    const ifaces = forward.children.filter((c) => c.name === "interface");
    if ((mode === "nat" || mode === "route") && ifaces.length === 1) {
      const idev = attr(ifaces[0], "dev");
      if (idev !== undefined && (forwardDevice === undefined || idev === forwardDevice)) {
        ifaces[0].used = true;
        forwardDevice = idev;
      }
    }
    const natNode = im.one(forward, "nat");
    if (natNode) {
      im.origins.set("nat", natNode);
      nat = {};
      if (im.yesNo(natNode, "ipv6")) nat.ipv6 = true;
      const address = im.one(natNode, "address");
      if (address) {
        im.origins.set("nat.addressRange", address);
        const start = im.required(address, "start");
        const end = im.required(address, "end");
        if (start !== undefined && end !== undefined) nat.addressRange = { start, end };
      }
      const port = im.one(natNode, "port");
      if (port) {
        im.origins.set("nat.portRange", port);
        const start = im.uint(port, "start", true);
        const end = im.uint(port, "end", true);
        if (start !== undefined && end !== undefined) nat.portRange = { start, end };
      }
    }
  }

  // <dns>
  let dns: LibvirtNetworkArgs["dns"];
  const dnsNode = im.one(root, "dns");
  if (dnsNode) {
    im.origins.set("dns", dnsNode);
    dns = {};
    const enabled = im.yesNo(dnsNode, "enable");
    if (enabled !== undefined) dns.enabled = enabled;
    const plain = im.yesNo(dnsNode, "forwardPlainNames");
    if (plain !== undefined) dns.forwardPlainNames = plain;
    const forwarders: { address?: string; domain?: string }[] = [];
    for (const f of childrenNamed(dnsNode, "forwarder")) {
      const addr = attr(f, "addr");
      const fdomain = attr(f, "domain");
      if (addr === undefined && fdomain === undefined) im.err(f, "a forwarder needs addr, domain or both");
      else {
        im.origins.set(`dns.forwarders[${forwarders.length}]`, f);
        forwarders.push({
          ...(addr !== undefined && { address: addr }),
          ...(fdomain !== undefined && { domain: fdomain }),
        });
      }
    }
    if (forwarders.length) dns.forwarders = forwarders;
    const hosts: { ip: string; hostnames: string[] }[] = [];
    for (const h of childrenNamed(dnsNode, "host")) {
      const i = hosts.length;
      im.origins.set(`dns.hosts[${i}]`, h);
      const ip = im.required(h, "ip");
      const names = childrenNamed(h, "hostname").map((n, j) => {
        im.origins.set(`dns.hosts[${i}].hostnames[${j}]`, n);
        return text(n);
      });
      if (names.length === 0) im.err(h, "a DNS host needs at least one <hostname>");
      if (ip !== undefined) hosts.push({ ip, hostnames: names });
    }
    if (hosts.length) dns.hosts = hosts;
    const srv: LibvirtSrvRecord[] = [];
    for (const r of childrenNamed(dnsNode, "srv")) {
      im.origins.set(`dns.srv[${srv.length}]`, r);
      const service = im.required(r, "service");
      const protocol = im.required(r, "protocol");
      const rec = { service, protocol } as LibvirtSrvRecord;
      for (const k of ["domain", "target"] as const) {
        const v = attr(r, k);
        if (v !== undefined) rec[k] = v;
      }
      for (const k of ["port", "priority", "weight"] as const) {
        const v = im.uint(r, k);
        if (v !== undefined) rec[k] = v;
      }
      if (service !== undefined && protocol !== undefined) srv.push(rec);
    }
    if (srv.length) dns.srv = srv;
    const txt: { name: string; value: string }[] = [];
    for (const t of childrenNamed(dnsNode, "txt")) {
      im.origins.set(`dns.txt[${txt.length}]`, t);
      const tname = im.required(t, "name");
      const value = im.required(t, "value");
      if (tname !== undefined && value !== undefined) txt.push({ name: tname, value });
    }
    if (txt.length) dns.txt = txt;
  }
  const dnsmasqOptions: string[] = [];
  let tftp: LibvirtNetworkArgs["tftp"];
  let bootp: LibvirtNetworkArgs["bootp"];
  dns = dnsmasqRecords(im, root, dns, dnsmasqOptions);

  // <ip>: the first IPv4 and the first IPv6 one are the network's subnets, each with its DHCP.
  let ipv4: LibvirtNetworkArgs["ipv4"];
  let ipv6: LibvirtNetworkArgs["ipv6"];
  const ipNodes: { 4?: XmlNode; 6?: XmlNode } = {};
  const ranges: LibvirtDhcpRangeArgs[] = [];
  const rangeNodes: XmlNode[] = [];
  const leaseNodes: (XmlNode | undefined)[] = [];
  // Each family's reservations go on that family's first range (a static-only one when there is none).
  const firstRange: { 4?: number; 6?: number } = {};
  const hosts: { 4: LibvirtDhcpReservation[]; 6: LibvirtDhcpReservation[] } = { 4: [], 6: [] };
  const hostNodes: { 4: XmlNode[]; 6: XmlNode[] } = { 4: [], 6: [] };
  for (const ip of childrenNamed(root, "ip")) {
    const family = familyOf(im, ip);
    if (family === undefined) continue;
    const seen = ipNodes[family];
    if (seen) {
      im.warn(
        ip,
        `virtnet gives a network one IPv${family} subnet: only the first IPv${family} <ip> (${describe(seen)}) is imported, not this one nor its DHCP`,
      );
      continue;
    }
    ipNodes[family] = ip;
    im.origins.set(`ipv${family}`, ip);
    const subnet = family === 4 ? im.subnet4(ip, "address") : im.subnet6(ip, "address");
    if (subnet && family === 4) ipv4 = { cidr: subnet.cidr, gateway: subnet.address };
    if (subnet && family === 6) ipv6 = { cidr: subnet.cidr, gateway: subnet.address };
    const tftpNode = family === 4 ? im.one(ip, "tftp") : undefined;
    if (tftpNode) {
      im.origins.set("tftp", tftpNode);
      const root = im.required(tftpNode, "root");
      if (root !== undefined) tftp = { root };
    }
    const dhcp = im.one(ip, "dhcp");
    if (!dhcp) continue;
    const bootpNode = family === 4 ? im.one(dhcp, "bootp") : undefined;
    if (bootpNode) {
      im.origins.set("bootp", bootpNode);
      const file = im.required(bootpNode, "file");
      const server = attr(bootpNode, "server");
      if (file !== undefined) bootp = server === undefined ? { file } : { file, server };
    }
    const rangesHere = childrenNamed(dhcp, "range");
    for (const r of rangesHere) {
      const range: LibvirtDhcpRangeArgs = { name: `range${ranges.length + 1}`, start: "", end: "" };
      range.start = im.required(r, "start") ?? "";
      range.end = im.required(r, "end") ?? "";
      const lease = im.one(r, "lease");
      if (lease) {
        const t = im.lease(lease);
        if (t !== undefined) range.leaseTime = t;
      }
      if (firstRange[family] === undefined) firstRange[family] = ranges.length;
      ranges.push(range);
      rangeNodes.push(r);
      leaseNodes.push(lease);
    }
    if (rangesHere.length === 0 && childrenNamed(dhcp, "host").length) {
      firstRange[family] = ranges.length;
      ranges.push({ name: `range${ranges.length + 1}` });
      rangeNodes.push(dhcp);
      leaseNodes.push(undefined);
    }
    for (const h of childrenNamed(dhcp, "host")) {
      const hmac = attr(h, "mac");
      const hid = family === 6 ? attr(h, "id") : undefined; // libvirt reads id on IPv6 hosts only
      const hname = attr(h, "name");
      if (family === 6 && hmac !== undefined) {
        im.err(
          h,
          "an IPv6 <host> names its client by id (DUID) or name, not by mac (libvirt refuses it too)",
        );
        continue;
      }
      if (family === 6 && hid === undefined && hname === undefined) {
        im.err(h, "an IPv6 <host> needs id (the client's DUID) or name, as libvirt requires");
        continue;
      }
      if (family === 4 && hmac === undefined) {
        im.warn(
          h,
          "virtnet reserves IPv4 addresses by MAC address only: this reservation has no mac and is not imported",
        );
        continue;
      }
      const hip = im.required(h, "ip");
      for (const l of childrenNamed(h, "lease"))
        im.warn(
          l,
          "a lease time per reservation is not supported by virtnet: the range's lease time applies",
        );
      if (hip === undefined) continue;
      const reservation: LibvirtDhcpReservation =
        family === 4 ? { mac: hmac!, ip: hip } : { ...(hid !== undefined && { duid: hid }), ip: hip };
      if (hname !== undefined) reservation.hostname = hname;
      hosts[family].push(reservation);
      hostNodes[family].push(h);
    }
  }
  for (const family of [4, 6] as const) {
    const first = firstRange[family];
    if (hosts[family].length && first !== undefined) ranges[first].hosts = hosts[family];
  }
  if (guestIpv6 && ipNodes[6])
    im.note(root, "ipv6='yes' changes nothing on a network with an IPv6 <ip>: IPv6 is on there anyway");
  else if (guestIpv6)
    im.warn(
      root,
      "ipv6='yes' (IPv6 between guests on a network without an IPv6 address) is not supported by virtnet; give the network an IPv6 <ip> instead",
      "ipv6",
    );

  // <route>
  const routes: LibvirtRouteArgs[] = [];
  const routeNodes: XmlNode[] = [];
  const routeFamilies: (4 | 6)[] = [];
  for (const r of childrenNamed(root, "route")) {
    const family = familyOf(im, r);
    if (family === undefined) continue;
    const dest = family === 4 ? im.subnet4(r, "address", true) : im.subnet6(r, "address", true);
    const gateway = im.required(r, "gateway");
    const metric = im.uint(r, "metric");
    if (metric === 0) im.err(r, "metric must be greater than 0, as libvirt requires");
    if (!dest || gateway === undefined) continue;
    // libvirt installs a route without metric with metric 1.
    const route: LibvirtRouteArgs = { destination: dest.cidr, gateway, metric: metric ?? 1 };
    if (metric === undefined) im.note(r, "no metric: libvirt's default metric 1 is kept");
    routes.push(route);
    routeNodes.push(r);
    routeFamilies.push(family);
  }

  const warnings = im.warnings(root);
  if (im.errors.length) throw new LibvirtXmlError(im.errors);

  // The arguments, then virtnet's own validation of them.
  const network: LibvirtNetworkArgs = {
    name,
    mode,
    ...(ipv4 && { ipv4 }),
    ...(ipv6 && { ipv6 }),
    ...(forwardDevice !== undefined && { forwardDevice }),
    ...(nat && Object.keys(nat).length > 0 && { nat }),
    bridge: existingBridge
      ? { ...(bridge.name !== undefined && { name: bridge.name }) }
      : {
          ...(bridge.name !== undefined && { name: bridge.name }),
          stp: bridge.stp,
          ...(bridge.delay !== undefined && { delay: bridge.delay }),
          ...(bridge.mtu !== undefined && { mtu: bridge.mtu }),
          ...(bridge.macAddress !== undefined && { macAddress: bridge.macAddress }),
        },
    ...(domain && { domain }),
    ...(dns && { dns }),
    ...(dnsmasqOptions.length > 0 && { dnsmasqOptions }),
    ...(tftp && { tftp }),
    ...(bootp && { bootp }),
  };

  if (!im.origins.has("ipv4")) im.origins.set("ipv4", ipNodes[6] ?? forward ?? root);
  const built = buildNetworkSpec(network, name);
  const problems = validationErrors(built.errors, im.origins, root);
  const spec = built.spec;
  const rangeSpecs: DhcpRangeSpec[] = [];
  ranges.forEach((r, i) => {
    const origins = new Map<string, XmlNode>([["", rangeNodes[i]]]);
    origins.set("start", rangeNodes[i]);
    origins.set("end", rangeNodes[i]);
    origins.set("leaseTime", leaseNodes[i] ?? rangeNodes[i]);
    const family = i === firstRange[4] ? 4 : i === firstRange[6] ? 6 : undefined;
    if (family) hostNodes[family].forEach((h, j) => origins.set(`hosts[${j}]`, h));
    const res = buildRangeSpec(r, r.name, {
      cidr: ipv4?.cidr,
      gateway: ipv4?.gateway,
      ipv6Cidr: ipv6?.cidr,
      ipv6Gateway: ipv6?.gateway,
    });
    problems.push(...validationErrors(res.errors, origins, rangeNodes[i], `DhcpRange ${r.name} `));
    if (res.spec) {
      for (const [j, other] of rangeSpecs.entries())
        if (rangeOverlaps(res.spec, other))
          problems.push(`${describe(rangeNodes[i])}: overlaps the range ${describe(rangeNodes[j])}`);
      rangeSpecs.push(res.spec);
    }
  });
  const routeSpecs: RouteSpec[] = [];
  routes.forEach((r, i) => {
    // A route goes via the network: its gateway must be on the network's subnet of the route's family.
    const subnet = routeFamilies[i] === 4 ? ipv4 : ipv6;
    if (!subnet) {
      problems.push(
        `${describe(routeNodes[i])}: the network has no IPv${routeFamilies[i]} <ip> for the gateway to be on`,
      );
      return;
    }
    const res = buildRouteSpec(
      {
        ...r,
        network: { name, bridgeName: spec?.bridge.name, cidr: subnet.cidr, gatewayIp: subnet.gateway },
      },
      `route${i + 1}`,
    );
    problems.push(...validationErrors(res.errors, new Map(), routeNodes[i], "StaticRoute "));
    if (res.spec) routeSpecs.push(res.spec);
  });
  if (problems.length || !spec)
    throw new LibvirtXmlError(problems.length ? problems : [`${describe(root)}: invalid`]);

  return {
    imported: { network, ranges, routes, warnings, notes: im.notes() },
    spec,
    rangeSpecs,
    routeSpecs,
  };
}
