// What the HostBridge probe (ops/hostBridge.ts) reports, parsed.
import { IpAddrInfo, IpRoute, UplinkState } from "../render/hostBridge";
import { TRUNK_VLANS } from "../render/ip";

export type { UplinkState } from "../render/hostBridge";

export interface ObservedHostLink {
  name: string;
  kind?: string;
  alias?: string;
  master?: string;
  mac: string;
  mtu: number;
  up: boolean;
  stp?: boolean;
  /** Hundredths of a second. */
  forwardDelay?: number;
  /** A VLAN-aware bridge (the kernel's vlan_filtering). */
  vlanFiltering?: boolean;
}

/** A DHCP client process: its program and its command line, and the interfaces it serves. */
export interface DhcpClient {
  pid: number;
  /** "dhclient", "udhcpc" or "dhcpcd". */
  program: string;
  argv: string[];
  /** The argv indexes that name its interfaces. */
  interfaceAt: number[];
  /** The interfaces it serves; empty when its command line names none (dhclient, dhcpcd: every interface). */
  interfaces: string[];
}

/** ISC dhclient's options that take a value (dhclient --help). */
const DHCLIENT_VALUE_OPTIONS = new Set([
  "-p",
  "-D",
  "-s",
  "-g",
  "-cf",
  "-df",
  "-lf",
  "-pf",
  "-e",
  "-sf",
  "--dad-wait-time",
  "--prefix-len-hint",
  "--decline-wait-time",
  "--address-prefix-len",
]);

/** Where a client's command line names its interfaces: argv indexes (udhcpc: empty when it takes eth0 by default). */
function interfaceArgs(program: string, argv: string[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if (program === "udhcpc") {
      // busybox udhcpc: -i IFACE, -iIFACE or --interface=IFACE.
      if (a === "-i" || a === "--interface") out.push(++i);
      else if (a.startsWith("--interface=") || /^-i./.test(a)) out.push(i);
    } else if (program === "dhclient" && DHCLIENT_VALUE_OPTIONS.has(a)) i++;
    else if (!a.startsWith("-")) out.push(i);
  }
  return out.filter((i) => i < argv.length);
}

function interfaceName(program: string, arg: string): string {
  if (program !== "udhcpc") return arg;
  return arg.startsWith("--interface=") ? arg.slice("--interface=".length) : arg.replace(/^-i(?=.)/, "");
}

/** A probe line "/proc/<pid> <program> <base64 of its cmdline>". */
function dhcpClientOf(line: string): DhcpClient | undefined {
  const [proc, program, encoded] = line.trim().split(/\s+/);
  const pid = /^\/proc\/(\d+)$/.exec(proc ?? "")?.[1];
  if (!pid || !program) return undefined;
  const argv = Buffer.from(encoded ?? "", "base64")
    .toString("utf8")
    .split("\0");
  if (argv[argv.length - 1] === "") argv.pop();
  return dhcpClient(Number(pid), program, argv);
}

/** A client from its command line: the interfaces it names. */
export function dhcpClient(pid: number, program: string, argv: string[]): DhcpClient {
  const interfaceAt = interfaceArgs(program, argv);
  let interfaces = interfaceAt.map((i) => interfaceName(program, argv[i]));
  if (program === "udhcpc" && !interfaces.length) interfaces = ["eth0"];
  return { pid, program, argv, interfaceAt, interfaces };
}

export interface ObservedHostBridge {
  uplink?: ObservedHostLink;
  bridge?: ObservedHostLink;
  /** The uplink, a bridge port, carries every VLAN of TRUNK_VLANS tagged. */
  uplinkTrunk?: boolean;
  /** The uplink as it is now (addresses, routes), when it exists. */
  uplinkState?: UplinkState;
  bridgeAddresses: IpAddrInfo[];
  wireless: boolean;
  /** Network managers that own the uplink. */
  managers: string[];
  /** DHCP clients running on the host. */
  dhcpClients: DhcpClient[];
  /** The uplink as saved before the move (the record of a HostBridge that exists). */
  saved?: UplinkState;
  /** The runner's last status line. */
  status?: string;
}

function sections(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let current = "";
  for (const line of text.split("\n")) {
    const m = /^@(\w+)$/.exec(line);
    if (m) current = m[1];
    else if (current) out[current] = (out[current] ?? "") + line + "\n";
  }
  return out;
}

function json<T>(s: string | undefined): T | undefined {
  const t = s?.trim();
  if (!t || t === "null") return undefined;
  try {
    return JSON.parse(t) as T;
  } catch {
    return undefined;
  }
}

function linkOf(s: string | undefined): ObservedHostLink | undefined {
  const l = json<any[]>(s)?.[0];
  if (!l) return undefined;
  const data = l.linkinfo?.info_data ?? {};
  const link: ObservedHostLink = {
    name: l.ifname,
    mac: l.address,
    mtu: l.mtu,
    up: (l.flags ?? []).includes("UP"),
  };
  if (l.linkinfo?.info_kind) link.kind = l.linkinfo.info_kind;
  if (l.ifalias) link.alias = l.ifalias;
  if (l.master) link.master = l.master;
  if (link.kind === "bridge") {
    link.stp = data.stp_state === 1;
    link.forwardDelay = data.forward_delay;
    link.vlanFiltering = (data.vlan_filtering ?? 0) !== 0;
  }
  return link;
}

/** `bridge -compressvlans -j vlan show` of a port lists TRUNK_VLANS as one range when it has them all, tagged. */
function isTrunk(vlans: { vlan: number; vlanEnd?: number; flags?: string[] }[]): boolean {
  return vlans.some(
    (v) =>
      v.vlan <= TRUNK_VLANS.first && (v.vlanEnd ?? v.vlan) >= TRUNK_VLANS.last && !(v.flags ?? []).length,
  );
}

export function parseHostBridgeProbe(text: string): ObservedHostBridge {
  const s = sections(text);
  const uplink = linkOf(s.link);
  const o: ObservedHostBridge = {
    bridgeAddresses: json<any[]>(s.bridgeAddr)?.[0]?.addr_info ?? [],
    wireless: s.wireless?.trim() === "yes",
    managers: (s.managers ?? "").split("\n").filter(Boolean),
    dhcpClients: (s.dhcp ?? "")
      .split("\n")
      .map(dhcpClientOf)
      .filter((c): c is DhcpClient => c !== undefined),
    uplinkTrunk: isTrunk(json<any[]>(s.uplinkVlans)?.[0]?.vlans ?? []),
  };
  if (uplink) {
    o.uplink = uplink;
    const addresses: IpAddrInfo[] = json<any[]>(s.addr)?.[0]?.addr_info ?? [];
    const routes = [...(json<IpRoute[]>(s.route4) ?? []), ...(json<IpRoute[]>(s.route6) ?? [])];
    o.uplinkState = { name: uplink.name, mac: uplink.mac, mtu: uplink.mtu, up: uplink.up, addresses, routes };
  }
  const bridge = linkOf(s.bridge);
  if (bridge) o.bridge = bridge;
  const saved = json<UplinkState>(s.saved);
  if (saved) o.saved = saved;
  const status = s.status?.trim();
  if (status) o.status = status;
  return o;
}
