// What a host has for one network, read from the kernel and the host's files in one round trip.
import { quote } from "shell-quote";
import {
  FORWARDING_MARKERS,
  GENERATION_FILE,
  INOTIFY_MARKER,
  IPTABLES_SCAFFOLD,
  legacyNftTableName,
  NETWORK_RECORD_FILE,
  NetworkPaths,
  NETWORKS_RUN_DIR,
  NETWORKS_STATE_DIR,
  NFT_TABLE,
  NFT_TABLE_REF,
  RESTORE_ENTRY,
  ROUTES_DIR,
  RUN_DIR,
  STATE_DIR,
  SYSCTL,
  sysctlPath,
  SYSTEMD_RUNTIME_DIR,
  SYSTEMD_UNIT_PATH,
  SYSTEMD_WANTS_DIR,
  SYSTEMD_WANTS_LINK,
} from "../naming";
import { IpFamily } from "../render/firewallIntent";
import { IptListing, parseIptablesSave } from "../render/iptables";
import { networkChainsOf } from "../render/nftables";
import { DhcpRangeSpec } from "../model/dhcpRange";
import { KernelRoute, RouteObservation } from "./route";
import { RouteSpec } from "../model/staticRoute";

/** Shell variables the probe reads; set from positional arguments by probeScript's callers. */
export const PROBE_VARS = [
  "br",
  "legacytable",
  "pidfile",
  "conf",
  "hostsfile",
  "dhcphosts",
  "rangesdir",
  "restorenet",
  "gw",
  "netdir",
  "rundir",
] as const;

/** A path of naming.ts in shell text. */
const q = (path: string) => quote([path]);

/**
 * proc_start PID: sets vn_state and vn_start to the process's state and start time (/proc/<pid>/stat fields 3
 * and 22; the start time tells it apart from a later process with the same pid); fails when it has no stat.
 * Fields are counted after the last ")", since the command name may hold blanks. The probe and the apply
 * scripts share it, so that a start time recorded by one matches the other's.
 */
export const PROC_START = String.raw`proc_start() {
  { read -r vn_l < "/proc/$1/stat"; } 2>/dev/null || return 1
  vn_l=${"$"}{vn_l##*) }
  set -- $vn_l
  vn_state=${"$"}{1:-}; vn_start=${"$"}{20:-}
}`;

/** Sets $vn_gen to the host's generation token ("" without one), never through a symlink. */
export const READ_GENERATION = `vn_gen=""; [ -f ${q(GENERATION_FILE)} ] && [ ! -L ${q(GENERATION_FILE)} ] && read -r vn_gen < ${q(GENERATION_FILE)}`;

/**
 * A read-only shell function: everything a plan reads, in one round trip. Its first section is the host's
 * generation token (naming.GENERATION_FILE), which the apply script checks under the host lock.
 */
export const PROBE_FUNCTION = [
  PROC_START,
  // The host's half: the same whichever network asks.
  String.raw`probe_host() {
  echo "@@generation"; ${READ_GENERATION}; echo "$vn_gen"
  # Every interface with its details and addresses: the network's half finds its bridge and ports here.
  echo "@@addrs"; ip -j -d addr show 2>/dev/null
  echo "@@routes4"; ip -j -4 route show table main 2>/dev/null
  echo "@@routes6"; ip -j -6 route show table main 2>/dev/null
  echo "@@routerecords"; for f in ${q(ROUTES_DIR)}/*.json; do [ -f "$f" ] && [ ! -L "$f" ] && { cat "$f"; echo; }; done
  echo "@@chains"; vn_chains=$(nft -j list chains 2>/dev/null); echo "$vn_chains"
  echo "@@nfttable"; nft list table ${NFT_TABLE_REF} 2>/dev/null
  # A sysctl file answers a one-byte read(2), which is how the shell's read reads, with its first byte only:
  # enough for these two (0 or 1), not for numbers (cat below). read's status is 1 here, with the value set.
  echo "@@forward"; vn_f=""; read -r vn_f < ${q(sysctlPath(SYSCTL.ipv4Forwarding))}; echo "$vn_f"
  echo "@@forwardmarker"; [ -e ${q(FORWARDING_MARKERS.ipv4)} ] && echo yes
  echo "@@forward6"; vn_f=""; { read -r vn_f < ${q(sysctlPath(SYSCTL.ipv6Forwarding))}; } 2>/dev/null; echo "$vn_f"
  echo "@@forward6marker"; [ -e ${q(FORWARDING_MARKERS.ipv6)} ] && echo yes
  echo "@@inotify"; cat ${q(sysctlPath(SYSCTL.inotifyInstances))}
  [ -f ${q(INOTIFY_MARKER)} ] && [ ! -L ${q(INOTIFY_MARKER)} ] && read -r vn_f < ${q(INOTIFY_MARKER)} && echo "$vn_f"
  [ -d ${q(SYSTEMD_RUNTIME_DIR)} ] && echo "@@systemd"
  [ -f ${q(RESTORE_ENTRY)} ] && [ ! -L ${q(RESTORE_ENTRY)} ] && { echo "@@restoreentry"; cat ${q(RESTORE_ENTRY)}; }
  [ -f ${q(SYSTEMD_UNIT_PATH)} ] && [ ! -L ${q(SYSTEMD_UNIT_PATH)} ] && { echo "@@unit"; cat ${q(SYSTEMD_UNIT_PATH)}; }
  [ -L ${q(SYSTEMD_WANTS_LINK)} ] && echo "@@unitenabled"
  [ -d ${q(SYSTEMD_WANTS_DIR)} ] && echo "@@wantsdir"
  echo "@@networks"; [ -d ${q(NETWORKS_STATE_DIR)} ] && find ${q(NETWORKS_STATE_DIR)} -mindepth 2 -maxdepth 2 -name ${q(NETWORK_RECORD_FILE)} -type f -exec awk 1 {} + 2>/dev/null
  echo "@@fwtools"; for t in nft iptables-restore ip6tables-restore iptables-save ip6tables-save firewall-cmd; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done; iptables -V 2>/dev/null
  echo "@@ipt4"; iptables-save 2>/dev/null | sed -n -E '/^\*|^:(VN-|DOCKER-USER |FORWARD )|VN-|^-A DOCKER-USER .*virtnet/{s/ \[[0-9]+:[0-9]+\]$//;p}'
  echo "@@ipt6"; ip6tables-save 2>/dev/null | sed -n -E '/^\*|^:(VN-|DOCKER-USER |FORWARD )|VN-|^-A DOCKER-USER .*virtnet/{s/ \[[0-9]+:[0-9]+\]$//;p}'
  echo "@@iptscaffold"; [ -f ${q(IPTABLES_SCAFFOLD)} ] && [ ! -L ${q(IPTABLES_SCAFFOLD)} ] && while read -r f t c; do
    echo "= $f $t $c"; [ -n "$c" ] || continue
    if [ "$f" = ip6 ]; then ip6tables -w -t "$t" -S "$c" 2>/dev/null; else iptables -w -t "$t" -S "$c" 2>/dev/null; fi
  done < ${q(IPTABLES_SCAFFOLD)}
  echo "@@tools"; for t in ip dnsmasq flock find awk; do command -v "$t" >/dev/null 2>&1 || echo "missing-tool $t"; done
  id -u dnsmasq >/dev/null 2>&1 || echo "missing-user dnsmasq"
}`,
  // The network's own half.
  String.raw`probe_net() {
  [ -n "$gw" ] && { echo "@@routeget"; ip -j route get "$gw" 2>/dev/null; }
  # An earlier virtnet's table of this network's own, listed only when it exists (it has chains).
  case "$vn_chains" in *"\"table\": \"$legacytable\","*) echo "@@legacynft"; nft list table inet "$legacytable" 2>/dev/null;; esac
  echo "@@dnsmasq"; pid=""; [ -f "$pidfile" ] && { read -r pid < "$pidfile"; } 2>/dev/null
  case "$pid" in *[!0-9]*|"") ;; *)
    if proc_start "$pid" && [ "$vn_state" != Z ]; then
      # If virtnet started it (the record dnsmasq_start leaves: pid and start time), its binary and command
      # line need no second look.
      echo "pid=$pid"; echo "start=$vn_start"
      vn_rec=""; { read -r vn_rec < "$pidfile.started"; } 2>/dev/null
      if [ -n "$vn_start" ] && [ "$vn_rec" = "$pid $vn_start" ] && [ ! -L "$pidfile.started" ]; then echo "started-by=virtnet"
      else echo "exe=$(readlink "/proc/$pid/exe")"; tr '\0' '\n' < "/proc/$pid/cmdline"; echo
      fi
    fi;;
  esac
  # The network's files: listed here, read for the whole probe by one awk (files_out).
  vn_add conf "$conf"; vn_add hosts "$hostsfile"; vn_add dhcphosts "$dhcphosts"
  vn_files="$vn_files$vn_k ranges -
"
  for f in "$rangesdir"/*.json; do vn_add ranges "$f"; done
  vn_add restorenet "$restorenet"
  echo "@@dirs"; for d in ${[STATE_DIR, NETWORKS_STATE_DIR, ROUTES_DIR].map(q).join(" ")} "$netdir" "$rangesdir" "$rundir" ${[NETWORKS_RUN_DIR, RUN_DIR].map(q).join(" ")}; do [ -d "$d" ] && echo "$d"; done
  [ -n "$br" ] && command -v firewall-cmd >/dev/null 2>&1 && { echo "@@fwzone"; firewall-cmd --get-zone-of-interface="$br" 2>&1; echo "exit=$?"; }
}`,
  // Files to read, a line each: network number, section, path ("-": the section alone). Names are validated,
  // so paths hold no blank or newline.
  String.raw`vn_files=""
vn_add() { [ -f "$2" ] && [ ! -L "$2" ] && vn_files="$vn_files$vn_k $1 $2
"; }`,
  // Each network's files after a "@@@files <n>" line, each file as a section (a process per file, or per
  // network, was most of a round's probe).
  String.raw`files_out() {
  printf '%s' "$vn_files" | awk '{
    if ($1 != k) { print "@@@files " $1; k = $1; s = "" }
    if ($2 != s) print "@@" (s = $2)
    if ($3 != "-") { while ((getline l < $3) > 0) print l; close($3) }
  }'
}`,
  `probe() { vn_k=1; probe_host; probe_net; files_out; echo "@@end"; }`,
].join("\n");

/** `gateway`: also ask the kernel how it reaches this address (StaticRoute's directly-connected check). */
export function probeArgs(name: string, bridge: string, paths: NetworkPaths, gateway = ""): string[] {
  return [
    bridge,
    legacyNftTableName(name),
    paths.dnsmasqPid,
    paths.dnsmasqConf,
    paths.addnHosts,
    paths.dhcpHosts,
    paths.rangesDir,
    paths.restoreScript,
    gateway,
    paths.stateDir,
    paths.runDir,
  ];
}

/** Assigns the probe's variables from its positional arguments. */
export const PROBE_PRELUDE = PROBE_VARS.map((v, i) => `${v}=\${${i + 1}}`).join("; ");

export const PROBE_SCRIPT = `${PROBE_PRELUDE}\n${PROBE_FUNCTION}\nprobe`;

/**
 * One probe of several networks on a host: the host's half once, then each network's half after a "@@@net"
 * line. Its arguments are the networks' probeArgs one after the other.
 */
export const MULTI_PROBE_SCRIPT = [
  PROBE_FUNCTION,
  PROBE_PRELUDE,
  "probe_host",
  "vn_k=0",
  `while [ $# -ge ${PROBE_VARS.length} ]; do`,
  `  vn_k=$((vn_k + 1)); ${PROBE_PRELUDE}`,
  '  echo "@@@net"; probe_net',
  `  shift ${PROBE_VARS.length}`,
  "done",
  'files_out; echo "@@@done"',
].join("\n");

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
  const host = sections(`${hostPart}\n@@end`);
  const interfaces = json<any[]>(host.get("addrs"), []); // read once: every network's half uses it
  return networks.map((n, i) => {
    const own = sections(`${netParts[i]}\n${files.get(i + 1) ?? ""}\n@@end`);
    return observedFrom(new Map([...host, ...own]), n.name, n.bridge, interfaces);
  });
}

export interface ObservedBridge {
  kind: string;
  alias?: string;
  mac: string;
  mtu: number;
  up: boolean;
  stp: boolean;
  forwardDelay: number; // hundredths of a second
  ports: string[];
}

/** What virtnet keeps on a host per network (network.json): enough to find, restore and remove it. */
export interface AppliedNetworkRecord {
  name: string;
  mode: string;
  bridge: string;
  cidr?: string;
  /** Records written before the shared table: the network's own nft table. */
  table?: string;
  /** The normalized desired state last applied: what a restore or an import rebuilds from. */
  spec?: unknown;
  /** The firewall backend chosen when it was applied; absent: nftables (records from before the choice). */
  firewallBackend?: "iptables";
}

/** The host's firewalls as far as virtnet cares: its tools, its own iptables lines, Docker's and firewalld's. */
export interface ObservedFirewall {
  /** Firewall commands present: nft, iptables-restore, ip6tables-restore, iptables-save, ip6tables-save, firewall-cmd. */
  tools: string[];
  /** iptables is the nf_tables variant: its tables are nft tables that nft lists and deletes. */
  iptablesNft: boolean;
  /** Per family, the lines of iptables-save about virtnet's chains, DOCKER-USER and the FORWARD policy. */
  iptables: Record<IpFamily, IptListing>;
  /** Every nft chain as "family table name", and every nft table as "family name". */
  nftChains: string[];
  nftTables: string[];
  /** virtnet's own table exists (it may be empty). */
  virtnetTable: boolean;
  /** virtnet's record of the iptables-nft tables and built-in chains it created, with `iptables -S` of each chain. */
  scaffold: { entry: string; rules: string[] }[];
  /** firewalld's zone of the bridge, when firewall-cmd is installed. */
  zone?: { running: boolean; zone?: string };
}

export interface ObservedNetwork {
  /** The generation token the probe saw; "" when the host has none (nothing of virtnet yet). */
  generation: string;
  bridge?: ObservedBridge;
  bridgeIpv4: string[]; // "10.50.1.1/24"
  bridgeIpv6: string[]; // global addresses only, "fd00:50:1::1/64"
  /** IPv4 prefixes on other interfaces (addresses and routes), for overlap checks. */
  foreignIpv4: { cidr: string; dev: string }[];
  /** The network's chains in virtnet's table, as renderNftables prints them. */
  nftListing?: string;
  /** The network's own table from an earlier virtnet, when the host still has it. */
  legacyNftTable?: { name: string; listing: string };
  forwardChainsWithDrop: string[]; // "ip filter FORWARD" of other tables
  ipForward: boolean;
  forwardMarker: boolean;
  ip6Forward: boolean;
  forward6Marker: boolean;
  /**
   * fs.inotify.max_user_instances, and virtnet's record of raising it ("<original> <raised to>"): every
   * dnsmasq that forwards DNS takes one instance (it watches resolv.conf). Absent in hand-made observations.
   */
  inotify?: { limit: number; marker?: { original: number; raised: number } };
  /** `start`: the process's start time in clock ticks since boot (/proc/<pid>/stat field 22). */
  dnsmasq?: { pid: number; start?: string; exe: string; argv: string[]; startedByVirtnet?: boolean };
  conf?: string;
  hosts?: string;
  dhcpHosts?: string;
  /** The DHCP ranges recorded for this network. */
  ranges: DhcpRangeSpec[];
  networks: AppliedNetworkRecord[];
  /** Networks the probe saw that plans before this one in the same script remove (lifecycle.ts rounds). */
  goneInRound?: string[];
  /** Kernel routes, virtnet's route records, and the gateway lookup when one was asked. */
  route: RouteObservation;
  /** Boot-time restore: the host runs systemd; virtnet's entry point, unit and this network's script. */
  restore: {
    systemd: boolean;
    entry?: string;
    unit?: string;
    unitEnabled: boolean;
    wantsDir: boolean;
    network?: string;
  };
  /** Which of virtnet's directories exist. */
  dirs: string[];
  missing: string[];
  /** Absent in hand-made observations: taken as a host with nft and no other firewall. */
  firewall?: ObservedFirewall;
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
  const s = sections(output.replace(/\n@@@files 1\n/, "\n"));
  return observedFrom(s, name, bridgeName, json<any[]>(s.get("addrs"), []));
}

function observedFrom(
  s: Map<string, string>,
  name: string,
  bridgeName: string,
  interfaces: any[],
): ObservedNetwork {
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
  const routes4 = json<KernelRoute[]>(s.get("routes4"), []);
  const routes6 = json<KernelRoute[]>(s.get("routes6"), []);
  const lookup = json<any[]>(s.get("routeget"), []);
  const dirs = (s.get("dirs") ?? "").split("\n").filter((l) => l !== "");
  const route: RouteObservation = {
    kernel: [...routes4, ...routes6],
    records: jsonLines<RouteSpec>(s.get("routerecords")),
    dirs,
  };
  if (s.has("routeget")) route.gatewayLookup = lookup[0] ?? {};
  for (const r of json<any[]>(s.get("routes4"), [])) {
    if (r.dst && r.dst !== "default" && r.dev !== bridgeName)
      foreignIpv4.push({ cidr: r.dst.includes("/") ? r.dst : `${r.dst}/32`, dev: r.dev ?? "?" });
  }
  const chains = json<any>(s.get("chains"), { nftables: [] }).nftables ?? [];
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
  // find lists directories in no set order; sorted, the observation does not depend on it.
  const networks = jsonLines<AppliedNetworkRecord>(s.get("networks")).sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
  return {
    generation: (s.get("generation") ?? "").trim(),
    bridge,
    bridgeIpv4,
    foreignIpv4,
    nftListing: networkChainsOf(text("nfttable"), name),
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
    firewall: parseFirewall(s, chains),
  };
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
  const zone = s.get("fwzone");
  if (zone !== undefined) {
    const out = zone.split("\n").filter((l) => l !== "");
    const exit = out.pop();
    // firewall-cmd exits 252 when firewalld is not running, 0 with the zone, another code for "no zone".
    fw.zone = { running: exit !== "exit=252" && !/not running/i.test(out.join(" ")) };
    if (exit === "exit=0" && out[0]) fw.zone.zone = out[0].trim();
  }
  return fw;
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

/** Is this dnsmasq ours for this config file? A pid file alone never proves it. */
export function isOurDnsmasq(observed: ObservedNetwork, confPath: string): boolean {
  const d = observed.dnsmasq;
  if (d?.startedByVirtnet) return true; // this network's record: started with its config by virtnet
  return !!d && /\/dnsmasq( \(deleted\))?$/.test(d.exe) && d.argv.includes(`--conf-file=${confPath}`);
}
