// Reads the probe's output (ops/probe.ts) into what the host has for each network.
import { EXTENSION_RESTORE_SUFFIX, legacyNftTableName, NFT_TABLE } from "../naming";
import { MemberRecord, SegmentRecord } from "../model/networkExtension";
import { parseIptablesSave } from "../render/iptables";
import { networkChainsOf } from "../render/nftables";
import { DhcpRangeSpec } from "../model/dhcpRange";
import { PortSpec } from "../model/port";
import { RouteSpec } from "../model/staticRoute";
import {
  AppliedNetworkRecord,
  FdbEntry,
  KernelPortVlan,
  KernelVlanRange,
  KernelRoute,
  ObservedBridge,
  ObservedFirewall,
  ObservedLink,
  ObservedNetwork,
  ObservedPort,
  RouteObservation,
} from "./observed";

/** Takes the "@@@files <n>" blocks off a probe's output: what is left, and each network's files. */
function splitFiles(output: string): { rest: string; files: Map<number, string> } {
  const [rest, ...parts] = output.split(/\n@@@files (\d+)\n/);
  const files = new Map<number, string>();
  for (let i = 0; i + 1 < parts.length; i += 2) files.set(Number(parts[i]), parts[i + 1]);
  return { rest, files };
}

/** The observations of a MULTI_PROBE_SCRIPT run, one per network in argument order. */
export function parseMultiProbe(
  output: string,
  networks: { name: string; bridge: string }[],
): ObservedNetwork[] {
  if (!/\n@@@done\n?$/.test(output)) throw new Error("host probe output was cut short");
  const { rest, files } = splitFiles(output.replace(/\n@@@done\n?$/, ""));
  const [hostPart, ...netParts] = rest.split("\n@@@net\n");
  if (netParts.length !== networks.length) throw new Error("host probe output was cut short");
  const host = sections(`${hostPart}\n${files.get(0) ?? ""}\n@@end`);
  const memo: HostMemo = new Map(); // the host's half, parsed once for every network's
  return networks.map((n, i) => {
    const own = sections(`${netParts[i]}\n${files.get(i + 1) ?? ""}\n@@end`);
    return observedFrom(new Map([...host, ...own]), n.name, n.bridge, memo);
  });
}

/**
 * What the networks of one probe read alike from its host's half (interfaces, routes, chains, records...),
 * parsed for the first and shared by the others: they grow with the host's networks, and so do the networks
 * of a probe. Nothing reading an observation changes it in place.
 */
type HostMemo = Map<string, unknown>;

function once<T>(memo: HostMemo, key: string, make: () => T): T {
  if (!memo.has(key)) memo.set(key, make());
  return memo.get(key) as T;
}

function sections(output: string): Map<string, string> {
  const map = new Map<string, string>();
  let current = "";
  let buf: string[] = [];
  for (const line of output.split("\n")) {
    const m = /^@@([a-z0-9]+)$/.exec(line);
    if (m) {
      if (current) map.set(current, buf.join("\n"));
      current = m[1];
      buf = [];
    } else buf.push(line);
  }
  if (current) map.set(current, buf.join("\n"));
  if (!map.has("end")) throw new Error("host probe output was cut short");
  return map;
}

function json<T>(text: string | undefined, fallback: T): T {
  if (!text || !text.trim()) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

function jsonLines<T>(text: string | undefined): T[] {
  return (text ?? "")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => json<T | null>(l, null))
    .filter((v): v is T => v !== null);
}

export function parseProbe(output: string, name: string, bridgeName: string): ObservedNetwork {
  const s = sections(output.replace(/\n@@@files [01]\n/g, "\n"));
  return observedFrom(s, name, bridgeName, new Map());
}

function observedFrom(
  s: Map<string, string>,
  name: string,
  bridgeName: string,
  memo: HostMemo,
): ObservedNetwork {
  const shared = <T>(key: string, make: () => T) => once(memo, key, make);
  const interfaces = shared("addrs", () => json<any[]>(s.get("addrs"), []));
  const legacyTable = legacyNftTableName(name);
  const ownTable = (t: string) => t === NFT_TABLE || t === legacyTable;
  const link = interfaces.find((i) => i.ifname === bridgeName);
  let bridge: ObservedBridge | undefined;
  if (link) {
    const info = link.linkinfo ?? {};
    bridge = {
      kind: info.info_kind ?? "unknown",
      alias: link.ifalias,
      mac: link.address,
      mtu: link.mtu,
      up: (link.flags ?? []).includes("UP"),
      stp: (info.info_data?.stp_state ?? 0) !== 0,
      forwardDelay: info.info_data?.forward_delay ?? 0,
      vlanFiltering: (info.info_data?.vlan_filtering ?? 0) !== 0,
      ports: interfaces.filter((i) => i.master === bridgeName).map((p) => p.ifname),
    };
  }
  const bridgeIpv4: string[] = [];
  const foreignIpv4: { cidr: string; dev: string }[] = [];
  for (const iface of interfaces) {
    for (const a of iface.addr_info ?? []) {
      if (a.family !== "inet") continue;
      if (iface.ifname === bridgeName) bridgeIpv4.push(`${a.local}/${a.prefixlen}`);
      else foreignIpv4.push({ cidr: `${a.local}/${a.prefixlen}`, dev: iface.ifname });
    }
  }
  const routes4 = shared("routes4", () => json<KernelRoute[]>(s.get("routes4"), []));
  const routes6 = shared("routes6", () => json<KernelRoute[]>(s.get("routes6"), []));
  const lookup = json<any[]>(s.get("routeget"), []);
  const dirs = (s.get("dirs") ?? "").split("\n").filter((l) => l !== "");
  const route: RouteObservation = {
    kernel: [...routes4, ...routes6],
    records: shared("routerecords", () => jsonLines<RouteSpec>(s.get("routerecords"))),
    dirs,
  };
  if (s.has("routeget")) route.gatewayLookup = lookup[0] ?? {};
  for (const r of routes4 as any[]) {
    if (r.dst && r.dst !== "default" && r.dev !== bridgeName)
      foreignIpv4.push({ cidr: r.dst.includes("/") ? r.dst : `${r.dst}/32`, dev: r.dev ?? "?" });
  }
  const chains = shared("chains", () => json<any>(s.get("chains"), { nftables: [] }).nftables ?? []);
  const forwardChainsWithDrop = chains
    .map((c: any) => c.chain)
    .filter((c: any) => c && c.hook === "forward" && c.policy === "drop" && !ownTable(c.table))
    .map((c: any) => `${c.family} ${c.table} ${c.name}`);
  let dnsmasq: ObservedNetwork["dnsmasq"];
  const d = (s.get("dnsmasq") ?? "").split("\n").filter((l) => l !== "");
  if (d[0]?.startsWith("pid=")) {
    const start = d[1]?.startsWith("start=") ? d[1].slice(6) : undefined;
    const rest = start === undefined ? d.slice(1) : d.slice(2);
    dnsmasq = { pid: Number(d[0].slice(4)), exe: (rest[0] ?? "").replace(/^exe=/, ""), argv: rest.slice(1) };
    if (start && /^\d+$/.test(start)) dnsmasq.start = start;
    if (rest[0] === "started-by=virtnet" && dnsmasq.start)
      dnsmasq = { ...dnsmasq, exe: "", argv: [], startedByVirtnet: true };
  }
  const text = (name: string) => {
    const v = s.get(name);
    return v === undefined || v === "" ? undefined : v;
  };
  const legacy = text("legacynft");
  // Sorted: the observation does not depend on the order the host lists directories in.
  const networks = shared("networks", () =>
    jsonLines<AppliedNetworkRecord>(s.get("networks")).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    ),
  );
  return {
    generation: (s.get("generation") ?? "").trim(),
    bridge,
    bridgeIpv4,
    foreignIpv4,
    nftListing: networkChainsOf(text("nfttable"), name),
    nftTableListing: text("nfttable"),
    ...(legacy === undefined ? {} : { legacyNftTable: { name: legacyTable, listing: legacy + "\n" } }),
    forwardChainsWithDrop,
    ipForward: (s.get("forward") ?? "").trim() === "1",
    forwardMarker: (s.get("forwardmarker") ?? "").trim() === "yes",
    ip6Forward: (s.get("forward6") ?? "").trim() === "1",
    forward6Marker: (s.get("forward6marker") ?? "").trim() === "yes",
    inotify: parseInotify(s.get("inotify")),
    bridgeIpv6: ((link?.addr_info ?? []) as any[])
      .filter((a) => a.family === "inet6" && a.scope === "global")
      .map((a) => `${a.local}/${a.prefixlen}`),
    dnsmasq,
    conf: fileContent(s.get("conf")),
    hosts: fileContent(s.get("hosts")),
    dhcpHosts: fileContent(s.get("dhcphosts")),
    ranges: jsonLines<DhcpRangeSpec>(s.get("ranges")),
    networks,
    route,
    restore: {
      systemd: s.has("systemd"),
      entry: fileContent(s.get("restoreentry")),
      unit: fileContent(s.get("unit")),
      unitEnabled: s.has("unitenabled"),
      wantsDir: s.has("wantsdir"),
      network: fileContent(s.get("restorenet")),
    },
    dirs,
    missing: (s.get("tools") ?? "").split("\n").filter((l) => l.startsWith("missing-")),
    firewall: { ...shared("firewall", () => parseFirewall(s, chains)), ...zoneOf(s.get("fwzone")) },
    links: shared("links", () => interfaces.map(linkOf)),
    fdb: shared("fdb", () => parseFdb(s.get("fdb"))),
    vxlanVlans: shared("vxlanvlans", () => parseVlanRanges(s.get("vxlanvlans"))),
    ...(s.has("segment") ? { segment: json<SegmentRecord | undefined>(s.get("segment"), undefined) } : {}),
    extensions: shared("extensions", () => jsonLines<MemberRecord>(s.get("extensions"))),
    extensionRestores: shared("extensionrestore", () => parseExtensionRestores(s.get("extensionrestore"))),
    ports: jsonLines<PortSpec>(s.get("ports")),
    ...parsePort(s.get("port"), interfaces),
    ...(s.has("portrestore") ? { portRestore: fileContent(s.get("portrestore")) } : {}),
    ...parseOwner(s.get("owneruid")),
    ...(s.has("tftproot") ? { tftpRootFound: (s.get("tftproot") ?? "").trim() === "dir" } : {}),
  };
}

function linkOf(i: any): ObservedLink {
  const info = i.linkinfo ?? {};
  const link: ObservedLink = {
    name: i.ifname,
    mtu: i.mtu,
    up: (i.flags ?? []).includes("UP"),
    addresses: (i.addr_info ?? []).map((a: any) => a.local),
  };
  if (info.info_kind) link.kind = info.info_kind;
  if (i.ifalias) link.alias = i.ifalias;
  if (i.master) link.master = i.master;
  const d = info.info_data;
  if (info.info_kind === "vlan" && d) link.vlan = { id: d.id, parent: i.link };
  if (info.info_kind === "vxlan" && d)
    link.vxlan = {
      vni: d.id,
      port: d.port,
      learning: d.learning !== false,
      ...(d.local ? { local: d.local } : {}),
    };
  return link;
}

/** Lines of a device name, then its entries as one JSON array. */
function parseFdb(section: string | undefined): Record<string, FdbEntry[]> {
  const out: Record<string, FdbEntry[]> = {};
  let dev = "";
  for (const line of (section ?? "").split("\n").filter((l) => l.trim())) {
    if (!line.startsWith("[")) {
      out[(dev = line.trim())] = [];
      continue;
    }
    for (const e of json<any[]>(line, []))
      if (dev && e.dst && (e.flags ?? []).includes("self"))
        out[dev].push({ mac: e.mac, dst: e.dst, permanent: e.state === "permanent" });
  }
  return out;
}

/** Device names, each followed by its `bridge -j -compressvlans vlan show dev` listing. */
function parseVlanRanges(section: string | undefined): Record<string, KernelVlanRange[]> {
  const out: Record<string, KernelVlanRange[]> = {};
  let dev = "";
  for (const line of (section ?? "").split("\n").filter((l) => l.trim())) {
    if (!line.startsWith("[")) {
      out[(dev = line.trim())] = [];
      continue;
    }
    for (const port of json<any[]>(line, []))
      for (const v of port.vlans ?? []) {
        const flags: string[] = v.flags ?? [];
        out[dev]?.push({
          id: v.vlan,
          end: v.vlanEnd ?? v.vlan,
          pvid: flags.includes("PVID"),
          untagged: flags.includes("Egress Untagged"),
        });
      }
  }
  return out;
}

/** "=== <path>" lines, each followed by that restore script. */
function parseExtensionRestores(section: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (section ?? "").split(/^=== /m).slice(1)) {
    const nl = part.indexOf("\n");
    const file = part.slice(0, nl).split("/").pop()!;
    out[file.slice(0, -EXTENSION_RESTORE_SUFFIX.length)] = part.slice(nl + 1).replace(/\n?$/, "\n");
  }
  return out;
}

/** The "@@port" section (the TAP's name, its sysfs owner, `bridge -j vlan show dev`) with its interface. */
function parsePort(section: string | undefined, interfaces: any[]): { port?: ObservedPort } {
  if (section === undefined) return {};
  const [name, owner, ...rest] = section.split("\n");
  const holders = new Map<number, string>();
  for (const l of rest) {
    const m = /^holder (\d+) ?(.*)$/.exec(l);
    if (m) holders.set(Number(m[1]), m[2]);
  }
  const vlanJson = rest.filter((l) => !l.startsWith("holder "));
  const link = interfaces.find((i) => i.ifname === name);
  if (!link) return {};
  const info = link.linkinfo ?? {};
  const uid = /^\d+$/.test(owner ?? "") ? Number(owner) : null;
  return {
    port: {
      name,
      ifindex: link.ifindex,
      kind: info.info_kind ?? "unknown",
      tunType: info.info_data?.type,
      alias: link.ifalias,
      master: link.master,
      mtu: link.mtu,
      mac: link.address,
      up: (link.flags ?? []).includes("UP"),
      carrier: (link.flags ?? []).includes("LOWER_UP"),
      holders: [...holders].map(([pid, command]) => ({ pid, command })),
      isolated: info.info_slave_data?.isolated === true,
      multiQueue: info.info_data?.multi_queue === true,
      ownerUid: uid,
      vlans: kernelVlans(json<any[]>(vlanJson.join("\n"), [])[0]?.vlans ?? []),
    },
  };
}

/** `bridge -j vlan show` entries of one port: ranges ("vlanEnd") spread, flags read. */
export function kernelVlans(entries: any[]): KernelPortVlan[] {
  const out: KernelPortVlan[] = [];
  for (const e of entries) {
    const flags: string[] = e.flags ?? [];
    for (let id = e.vlan; id <= (e.vlanEnd ?? e.vlan); id++)
      out.push({ id, pvid: flags.includes("PVID"), untagged: flags.includes("Egress Untagged") });
  }
  return out.sort((a, b) => a.id - b.id);
}

function parseOwner(section: string | undefined): { portOwnerUid?: number | null } {
  if (section === undefined) return {};
  const uid = section.trim();
  return { portOwnerUid: /^\d+$/.test(uid) ? Number(uid) : null };
}

function parseFirewall(s: Map<string, string>, chains: any[]): ObservedFirewall {
  const lines = (name: string) => (s.get(name) ?? "").split("\n").filter((l) => l !== "");
  const tools = lines("fwtools");
  const scaffold: ObservedFirewall["scaffold"] = [];
  // Entries are virtnet's own words ("ip filter", "ip6 nat POSTROUTING"); anything else is not virtnet's record.
  for (const l of lines("iptscaffold")) {
    if (l.startsWith("= ")) scaffold.push({ entry: l.slice(2).trim(), rules: [] });
    else scaffold[scaffold.length - 1]?.rules.push(l);
  }
  const scaffoldEntry = /^ip6? (filter|nat)( [A-Z]+)?$/;
  const fw: ObservedFirewall = {
    tools: tools.filter((t) => !t.includes(" ")),
    iptablesNft: tools.some((t) => t.startsWith("iptables v") && t.includes("(nf_tables)")),
    iptables: { ipv4: parseIptablesSave(s.get("ipt4") ?? ""), ipv6: parseIptablesSave(s.get("ipt6") ?? "") },
    nftChains: chains
      .map((c: any) => c.chain)
      .filter((c: any) => c)
      .map((c: any) => `${c.family} ${c.table} ${c.name}`),
    // Tables with at least one chain. `nft list tables` costs 3x `list chains` (nft 1.0.6 fetches every rule
    // for it); a table without chains has no effect on traffic, and virtnet's iptables tables always have some.
    nftTables: [
      ...new Set(
        chains
          .map((c: any) => c.chain)
          .filter((c: any) => c)
          .map((c: any) => `${c.family} ${c.table}`),
      ),
    ],
    virtnetTable: (s.get("nfttable") ?? "").trim() !== "",
    scaffold: scaffold.filter((e) => scaffoldEntry.test(e.entry)),
  };
  return fw;
}

/** firewalld's answer about the network's bridge (the "@@fwzone" section of the network's half). */
function zoneOf(section: string | undefined): Pick<ObservedFirewall, "zone"> {
  if (section === undefined) return {};
  const out = section.split("\n").filter((l) => l !== "");
  const exit = out.pop();
  // firewalld answers with the zone (exit 0) or "no zone" (exit 2). Anything else means no firewalld to ask:
  // 252 NOT_RUNNING, 36 DBUS_ERROR (a system bus but no firewalld on it), or no system bus at all.
  const zone: NonNullable<ObservedFirewall["zone"]> = {
    running: exit === "exit=0" || (exit === "exit=2" && out.join(" ").trim() === "no zone"),
  };
  if (exit === "exit=0" && out[0]) zone.zone = out[0].trim();
  return { zone };
}

function parseInotify(section: string | undefined): ObservedNetwork["inotify"] {
  const [limit, marker] = (section ?? "").split("\n");
  if (!/^\d+$/.test(limit ?? "")) return undefined;
  const m = /^(\d+) (\d+)$/.exec(marker ?? "");
  return m
    ? { limit: Number(limit), marker: { original: Number(m[1]), raised: Number(m[2]) } }
    : { limit: Number(limit) };
}

// A section loses its file's last newline when split; files virtnet writes are empty or end with one.
function fileContent(section: string | undefined): string | undefined {
  if (section === undefined) return undefined;
  return section === "" ? "" : section + "\n";
}
