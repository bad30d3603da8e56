// A network's inputs, validated and normalized into the desired state that renderers and the apply layer use.
import * as ipaddr from "ipaddr.js";
import { FIREWALL_BACKENDS, NetworkArgs, Unchecked } from "./inputs";
import {
  Mode,
  modeForwards,
  MODES,
  modeMasquerades,
  modeRoutesThroughFirewall,
  modeUsesExistingBridge,
} from "./modes";
import { defaultBridgeMac, defaultBridgeName, MAX_IFNAME, vlanLinkName } from "../naming";
import { checkDnsmasqOptions } from "./dnsmasqOptions";
import { BootSpec, checkBoot } from "./networkBoot";
import { checkDns, DnsSpec } from "./networkDns";
import {
  checkInteger,
  checkNoControlCharacters,
  checkSafeName,
  checkUnicastMac,
  containsUnknown,
  isDnsName,
  isUnknown,
  Problems,
  PropertyError,
} from "./validation";

export type FirewallBackend = Exclude<(typeof FIREWALL_BACKENDS)[number], "auto">;

/** What a user writes (after the SDK has split off the connection). Any field may be a preview unknown. */
export type NetworkInputs = Unchecked<NetworkArgs>;

export interface Ipv4Spec {
  cidr: string; // network address / prefix, e.g. 10.50.1.0/24
  network: string;
  prefixLength: number;
  netmask: string;
  broadcast: string;
  gateway: string;
}

export interface Ipv6Spec {
  cidr: string; // e.g. fd00:50:1::/64
  network: string;
  prefixLength: number;
  gateway: string;
}

export interface NetworkSpec {
  name: string;
  mode: Mode;
  /** Absent in records written before autostart existed: true. */
  autostart?: boolean;
  /** Absent: "auto". */
  firewallBackend?: FirewallBackend;
  ipv4?: Ipv4Spec;
  ipv6?: Ipv6Spec;
  forwardDevice?: string;
  nat: {
    addressRange?: { start: string; end: string };
    portRange: { start: number; end: number };
    ipv6?: boolean;
  };
  /**
   * zone: the firewalld zone virtnet puts the bridge in (libvirt's <bridge zone=...>); vlanFiltering: a
   * VLAN-aware bridge (absent when off, as in records from before it existed).
   */
  bridge: {
    name: string;
    stp: boolean;
    delay: number;
    mtu?: number;
    macAddress: string;
    zone?: string;
    vlanFiltering?: true;
  };
  domain?: { name: string; localOnly: boolean };
  /** The network's VLAN on a trunk uplink: `link` is the 802.1Q sub-interface on the bridge. */
  vlan?: { id: number; uplink: string; link: string };
  dns: DnsSpec;
  /** The user's own dnsmasq options, checked (model/dnsmasqOptions.ts); absent when none. */
  dnsmasqOptions?: string[];
  tftp?: BootSpec["tftp"];
  bootp?: BootSpec["bootp"];
}

/**
 * The host routes the network's traffic: a forwarding mode, and an address to route for. A network without
 * addresses is a layer-2 switch (its bridge forwards frames, the host routes nothing).
 */
export function routesTraffic(spec: Pick<NetworkSpec, "mode" | "ipv4" | "ipv6">): boolean {
  return modeForwards(spec.mode) && (spec.ipv4 !== undefined || spec.ipv6 !== undefined);
}

/** `spec` is absent when there are errors, or when unknown (preview) inputs leave nothing to build. */
export interface SpecResult {
  spec?: NetworkSpec;
  errors: PropertyError[];
}

const MAX_NAME = 64;
export const DEFAULT_NAT_PORTS = { start: 1024, end: 65535 };

function parseIpv4(value: string): ipaddr.IPv4 | undefined {
  return ipaddr.IPv4.isValidFourPartDecimal(value) ? ipaddr.IPv4.parse(value) : undefined;
}

function checkIpv4(raw: NetworkInputs["ipv4"], problems: Problems): Ipv4Spec | undefined {
  if (!raw || typeof raw !== "object") {
    problems.add("ipv4", 'must be an object like { cidr: "10.50.1.0/24" }');
    return undefined;
  }
  // A bad cidr leaves the gateway's own syntax to check, so one check reports both.
  const gatewayAlone = () => {
    const g = raw.gateway;
    if (g !== undefined && !isUnknown(g) && !(typeof g === "string" && parseIpv4(g)))
      problems.add("ipv4.gateway", `"${g}" is not an IPv4 address`);
    return undefined;
  };
  if (typeof raw.cidr !== "string") {
    problems.add("ipv4.cidr", 'is required, e.g. "10.50.1.0/24"');
    return gatewayAlone();
  }
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(raw.cidr);
  const addr = m ? parseIpv4(m[1]) : undefined;
  const prefixLength = m ? Number(m[2]) : NaN;
  if (!m || !addr || prefixLength < 1 || prefixLength > 30) {
    problems.add("ipv4.cidr", `"${raw.cidr}" is not an IPv4 CIDR with a prefix from /1 to /30`);
    return gatewayAlone();
  }
  const network = ipaddr.IPv4.networkAddressFromCIDR(raw.cidr);
  if (network.toString() !== addr.toString()) {
    problems.add("ipv4.cidr", `host bits are set: did you mean ${network.toString()}/${prefixLength}?`);
    return gatewayAlone();
  }
  const broadcast = ipaddr.IPv4.broadcastAddressFromCIDR(raw.cidr);
  const firstUsable = ipaddr.IPv4.parse(network.toString());
  firstUsable.octets[3] += 1; // /30 at most, so the last octet never overflows
  let gateway = firstUsable.toString();
  if (raw.gateway !== undefined && !isUnknown(raw.gateway)) {
    const gw = typeof raw.gateway === "string" ? parseIpv4(raw.gateway) : undefined;
    if (!gw) problems.add("ipv4.gateway", `"${raw.gateway}" is not an IPv4 address`);
    else if (!gw.match(network, prefixLength))
      problems.add("ipv4.gateway", `${raw.gateway} is outside ${raw.cidr}`);
    else if (gw.toString() === network.toString())
      problems.add("ipv4.gateway", `${raw.gateway} is the network address of ${raw.cidr}`);
    else if (gw.toString() === broadcast.toString())
      problems.add("ipv4.gateway", `${raw.gateway} is the broadcast address of ${raw.cidr}`);
    else gateway = gw.toString();
  }
  return {
    cidr: `${network.toString()}/${prefixLength}`,
    network: network.toString(),
    prefixLength,
    netmask: ipaddr.IPv4.subnetMaskFromPrefixLength(prefixLength).toString(),
    broadcast: broadcast.toString(),
    gateway,
  };
}

function checkIpv6(raw: NetworkInputs["ipv6"], problems: Problems): Ipv6Spec | undefined {
  if (!raw || typeof raw !== "object") {
    problems.add("ipv6", 'must be an object like { cidr: "fd00:50:1::/64" }');
    return undefined;
  }
  const gatewayAlone = () => {
    const g = raw.gateway;
    const valid = typeof g === "string" && ipaddr.IPv6.isValid(g) && !g.includes("%");
    if (g !== undefined && !isUnknown(g) && !valid)
      problems.add("ipv6.gateway", `"${g}" is not an IPv6 address`);
    return undefined;
  };
  const m = typeof raw.cidr === "string" ? /^([0-9a-fA-F:]+)\/(\d{1,3})$/.exec(raw.cidr) : null;
  const prefixLength = m ? Number(m[2]) : NaN;
  if (!m || !ipaddr.IPv6.isValid(m[1]) || prefixLength < 8 || prefixLength > 126) {
    problems.add("ipv6.cidr", `"${raw.cidr}" is not an IPv6 CIDR with a prefix from /8 to /126`);
    return gatewayAlone();
  }
  const addr = ipaddr.IPv6.parse(m[1]);
  const network = ipaddr.IPv6.networkAddressFromCIDR(raw.cidr!);
  if (network.toString() !== addr.toString()) {
    problems.add("ipv6.cidr", `host bits are set: did you mean ${network.toString()}/${prefixLength}?`);
    return gatewayAlone();
  }
  const first = ipaddr.IPv6.parse(network.toString());
  first.parts[7] += 1; // /126 at most, so the last group never overflows
  let gateway = first.toString();
  if (raw.gateway !== undefined && !isUnknown(raw.gateway)) {
    const gw =
      typeof raw.gateway === "string" && ipaddr.IPv6.isValid(raw.gateway)
        ? ipaddr.IPv6.parse(raw.gateway)
        : undefined;
    if (!gw || raw.gateway.includes("%"))
      problems.add("ipv6.gateway", `"${raw.gateway}" is not an IPv6 address`);
    else if (!gw.match(network, prefixLength))
      problems.add("ipv6.gateway", `${raw.gateway} is outside ${raw.cidr}`);
    else if (gw.toString() === network.toString())
      problems.add("ipv6.gateway", `${raw.gateway} is the subnet-router anycast address of ${raw.cidr}`);
    else gateway = gw.toString();
  }
  return {
    cidr: `${network.toString()}/${prefixLength}`,
    network: network.toString(),
    prefixLength,
    gateway,
  };
}

function checkIfname(value: unknown, path: string, problems: Problems): string | undefined {
  if (typeof value !== "string") {
    problems.add(path, "must be a string");
    return undefined;
  }
  const before = problems.errors.length;
  checkSafeName(value, path, problems, MAX_IFNAME);
  return problems.errors.length === before ? value : undefined;
}

function checkNat(raw: NetworkInputs["nat"], mode: Mode | undefined, problems: Problems): NetworkSpec["nat"] {
  const nat: NetworkSpec["nat"] = { portRange: { ...DEFAULT_NAT_PORTS } };
  if (raw === undefined) return nat;
  if (mode !== undefined && !modeMasquerades(mode))
    problems.add("nat", `applies only to mode "nat", not "${mode}"`);
  if (raw.addressRange !== undefined) {
    const { start, end } = raw.addressRange;
    const s = typeof start === "string" ? parseIpv4(start) : undefined;
    const e = typeof end === "string" ? parseIpv4(end) : undefined;
    if (!s) problems.add("nat.addressRange.start", `"${start}" is not an IPv4 address`);
    if (!e) problems.add("nat.addressRange.end", `"${end}" is not an IPv4 address`);
    if (s && e) {
      if (compareIpv4(s, e) > 0) problems.add("nat.addressRange", `start ${start} is after end ${end}`);
      else nat.addressRange = { start: s.toString(), end: e.toString() };
    }
  }
  if (raw.ipv6 !== undefined) {
    if (typeof raw.ipv6 !== "boolean") problems.add("nat.ipv6", "must be true or false");
    else if (raw.ipv6) nat.ipv6 = true;
  }
  if (raw.portRange !== undefined) {
    const { start, end } = raw.portRange;
    const okStart = checkInteger(start, "nat.portRange.start", problems, 1, 65535);
    const okEnd = checkInteger(end, "nat.portRange.end", problems, 1, 65535);
    if (okStart && okEnd) {
      if ((start as number) > (end as number))
        problems.add("nat.portRange", `start ${start} is after end ${end}`);
      else nat.portRange = { start: start as number, end: end as number };
    }
  }
  return nat;
}

function checkVlan(raw: NetworkInputs["vlan"], problems: Problems): NetworkSpec["vlan"] {
  if (!raw || typeof raw !== "object") {
    problems.add("vlan", 'must be an object like { id: 10, uplink: "eth1" }');
    return undefined;
  }
  const okId = checkInteger(raw.id, "vlan.id", problems, 1, 4094);
  if (raw.uplink === undefined) {
    problems.add("vlan.uplink", 'is required: the trunk interface, e.g. "eth1"');
    return undefined;
  }
  const uplink = checkIfname(raw.uplink, "vlan.uplink", problems);
  if (!okId || !uplink) return undefined;
  const id = raw.id as number;
  return { id, uplink, link: vlanLinkName(uplink, id) };
}

/**
 * Mode "bridge" names a bridge the host already has: virtnet puts nothing on it, so every property that would
 * (an address, DHCP/DNS, the bridge's own settings) is refused, naming it.
 */
function checkExistingBridge(raw: NetworkInputs, problems: Problems): void {
  const why = 'mode "bridge" uses a bridge the host already has, and virtnet adds nothing to it';
  if (raw.bridge?.name === undefined)
    problems.add("bridge.name", 'is required with mode "bridge": the existing bridge, e.g. "br0"');
  for (const key of ["ipv4", "ipv6", "domain", "vlan"] as const)
    if (raw[key] !== undefined)
      problems.add(key, `${why}: guests take their addresses from the LAN behind it`);
  const dns = raw.dns;
  const dnsSet =
    dns !== undefined &&
    Object.entries(dns).some(([k, v]) =>
      k === "enabled" ? v !== false : Array.isArray(v) ? v.length > 0 : v !== undefined,
    );
  if (dnsSet) problems.add("dns", `${why}: no DNS server runs for it`);
  for (const key of ["stp", "delay", "mtu", "macAddress", "zone", "vlanFiltering"] as const)
    if (raw.bridge?.[key] !== undefined)
      problems.add(
        `bridge.${key}`,
        `${why}: the bridge's settings stay the host's (set them on the HostBridge)`,
      );
  if (raw.firewallBackend !== undefined && raw.firewallBackend !== "auto")
    problems.add("firewallBackend", `${why}: it has no firewall rules`);
}

function compareIpv4(a: ipaddr.IPv4, b: ipaddr.IPv4): number {
  for (let i = 0; i < 4; i++) if (a.octets[i] !== b.octets[i]) return a.octets[i] - b.octets[i];
  return 0;
}

/** `host` (the connection's): a network on a VLAN uplink gets a bridge MAC of its own on each host. */
export function buildNetworkSpec(raw: NetworkInputs, defaultName: string, host?: string): SpecResult {
  const problems = new Problems();
  // dnsmasqOptions gets its own message (model/dnsmasqOptions.ts).
  const { dnsmasqOptions: rawOptions, ...rest } = raw;
  checkNoControlCharacters({ ...rest, name: raw.name ?? defaultName }, "", problems);
  const dnsmasqOptions = containsUnknown(rawOptions) ? undefined : checkDnsmasqOptions(rawOptions, problems);
  if (!problems.ok) return { errors: problems.errors };
  const known = <T>(v: T): v is Exclude<T, undefined> => v !== undefined && !isUnknown(v);

  const name = raw.name === undefined ? defaultName : raw.name;
  if (known(name)) {
    if (typeof name !== "string") problems.add("name", "must be a string");
    else checkSafeName(name, "name", problems, MAX_NAME);
  }

  let mode: Mode | undefined;
  if (raw.mode === undefined) problems.add("mode", `is required: one of ${MODES.join(", ")}`);
  else if (known(raw.mode)) {
    if (!(MODES as readonly string[]).includes(raw.mode))
      problems.add("mode", `"${raw.mode}" is not one of ${MODES.join(", ")}`);
    else mode = raw.mode as Mode;
  }

  let ipv4: Ipv4Spec | undefined;
  if (raw.ipv4 !== undefined && !containsUnknown(raw.ipv4)) ipv4 = checkIpv4(raw.ipv4, problems);
  let ipv6: Ipv6Spec | undefined;
  if (raw.ipv6 !== undefined && !containsUnknown(raw.ipv6)) ipv6 = checkIpv6(raw.ipv6, problems);
  if (
    raw.ipv4 === undefined &&
    raw.ipv6 === undefined &&
    mode !== undefined &&
    modeRoutesThroughFirewall(mode)
  )
    problems.add("ipv4", `mode "${mode}" needs an address: set ipv4.cidr or ipv6.cidr`);

  let forwardDevice: string | undefined;
  if (known(raw.forwardDevice)) {
    forwardDevice = checkIfname(raw.forwardDevice, "forwardDevice", problems);
    if (mode !== undefined && !modeRoutesThroughFirewall(mode))
      problems.add("forwardDevice", `applies only to modes "nat" and "route", not "${mode}"`);
  }

  const nat = containsUnknown(raw.nat)
    ? { portRange: { ...DEFAULT_NAT_PORTS } }
    : checkNat(raw.nat, mode, problems);

  const b = raw.bridge ?? {};
  const bridgeName = known(b.name) ? checkIfname(b.name, "bridge.name", problems) : undefined;
  let stp = false;
  if (known(b.stp)) {
    if (typeof b.stp !== "boolean") problems.add("bridge.stp", "must be true or false");
    else stp = b.stp;
  }
  // With STP on, the kernel keeps the forward delay within 2-30 s whatever it is told.
  const minDelay = stp ? 2 : 0;
  let delay = minDelay;
  if (known(b.delay) && checkInteger(b.delay, "bridge.delay", problems, minDelay, 30)) delay = b.delay;
  let mtu: number | undefined;
  if (known(b.mtu) && checkInteger(b.mtu, "bridge.mtu", problems, 68, 65535)) mtu = b.mtu;
  let mac: string | undefined;
  if (known(b.macAddress)) {
    const before = problems.errors.length;
    if (typeof b.macAddress !== "string") problems.add("bridge.macAddress", "must be a string");
    else checkUnicastMac(b.macAddress, "bridge.macAddress", problems);
    if (problems.errors.length === before) mac = (b.macAddress as string).toLowerCase();
  }

  let domain: NetworkSpec["domain"];
  if (raw.domain !== undefined && !containsUnknown(raw.domain)) {
    if (typeof raw.domain.name !== "string" || !isDnsName(raw.domain.name))
      problems.add("domain.name", `"${raw.domain.name}" is not a DNS domain name`);
    else if (raw.domain.localOnly !== undefined && typeof raw.domain.localOnly !== "boolean")
      problems.add("domain.localOnly", "must be true or false");
    else domain = { name: raw.domain.name.replace(/\.$/, ""), localOnly: raw.domain.localOnly ?? false };
  }

  const dns = containsUnknown(raw.dns)
    ? { enabled: true, forwarders: [], hosts: [] }
    : checkDns(raw.dns, problems);

  let zone: string | undefined;
  if (known(b.zone)) {
    // firewalld zone names are file names of at most 17 characters.
    if (typeof b.zone !== "string" || !/^[A-Za-z0-9_-]{1,17}$/.test(b.zone))
      problems.add("bridge.zone", "must be a firewalld zone name: 1 to 17 letters, digits, '_' or '-'");
    else zone = b.zone;
  }

  let vlanFiltering = false;
  if (known(b.vlanFiltering)) {
    if (typeof b.vlanFiltering !== "boolean") problems.add("bridge.vlanFiltering", "must be true or false");
    else vlanFiltering = b.vlanFiltering;
  }

  let firewallBackend: FirewallBackend | undefined;
  if (known(raw.firewallBackend)) {
    if (!(FIREWALL_BACKENDS as readonly unknown[]).includes(raw.firewallBackend))
      problems.add(
        "firewallBackend",
        `"${raw.firewallBackend}" is not one of ${FIREWALL_BACKENDS.join(", ")}`,
      );
    else if (raw.firewallBackend !== "auto") firewallBackend = raw.firewallBackend as FirewallBackend;
  }

  let vlan: NetworkSpec["vlan"];
  if (raw.vlan !== undefined && !containsUnknown(raw.vlan)) vlan = checkVlan(raw.vlan, problems);

  let autostart = true;
  if (known(raw.autostart)) {
    if (typeof raw.autostart !== "boolean") problems.add("autostart", "must be true or false");
    else autostart = raw.autostart;
  }

  const boot =
    containsUnknown(raw.tftp) || containsUnknown(raw.bootp)
      ? {}
      : checkBoot(raw, raw.ipv4 !== undefined, problems);
  if (mode !== undefined && modeUsesExistingBridge(mode)) checkExistingBridge(raw, problems);

  if (!problems.ok) return { errors: problems.errors };
  if (!known(name) || !mode) return { errors: [] }; // unknowns: nothing to build yet
  const spec: NetworkSpec = {
    name: name as string,
    mode,
    nat,
    bridge: {
      name: bridgeName ?? defaultBridgeName(name as string),
      stp,
      delay,
      macAddress: mac ?? defaultBridgeMac(name as string, vlan ? host : undefined),
    },
    dns,
  };
  if (!autostart) spec.autostart = false;
  if (modeUsesExistingBridge(mode)) spec.dns = { enabled: false, forwarders: [], hosts: [] };
  if (firewallBackend) spec.firewallBackend = firewallBackend;
  if (zone) spec.bridge.zone = zone;
  if (vlanFiltering) spec.bridge.vlanFiltering = true;
  if (ipv4) spec.ipv4 = ipv4;
  if (ipv6) spec.ipv6 = ipv6;
  if (forwardDevice) spec.forwardDevice = forwardDevice;
  if (mtu !== undefined) spec.bridge.mtu = mtu;
  if (domain) spec.domain = domain;
  if (vlan) spec.vlan = vlan;
  if (dnsmasqOptions) spec.dnsmasqOptions = dnsmasqOptions;
  if (boot.tftp) spec.tftp = boot.tftp;
  if (boot.bootp) spec.bootp = boot.bootp;
  return { spec, errors: [] };
}
