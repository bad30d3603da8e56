// The one read-only op: a shell function that reads everything a plan needs from a host in one round trip.
// Host-wide paths come from naming.ts, each network's own paths as arguments (probeArgs); observe/parse.ts
// reads its output.
import {
  EXTENSIONS_DIR,
  HOST_BRIDGES_DIR,
  EXTENSION_RESTORE_SUFFIX,
  FORWARDING_MARKERS,
  GENERATION_FILE,
  INOTIFY_MARKER,
  IPTABLES_SCAFFOLD,
  LEGACY_NFT_PREFIX,
  legacyNftTableName,
  NETWORK_RECORD_FILE,
  NetworkPaths,
  NETWORKS_RUN_DIR,
  NETWORKS_STATE_DIR,
  NET_DEVICES_DIR,
  NFT_TABLE_REF,
  PORTS_DIR_NAME,
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
  VXLAN_PREFIX,
} from "../naming";
import { sh } from "./shell";

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
  "segmentrec",
  "gw",
  "netdir",
  "rundir",
  "port",
  "owner",
  "tftproot",
] as const;

/** A path of naming.ts in shell text. */
const q = (path: string) => sh(path);

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
  vn_k=0 # the host's files (files_out), before each network's
  echo "@@generation"; ${READ_GENERATION}; echo "$vn_gen"
  # Every interface with its details and addresses: the network's half finds its bridge and ports here.
  echo "@@addrs"; ip -j -d addr show 2>/dev/null
  # Stretched segments: the extensions this host is a member of, and the forwarding database of virtnet's
  # VXLAN devices (no process when there are none).
  echo "@@extensions"; for f in ${q(EXTENSIONS_DIR)}/*.json; do [ -f "$f" ] && [ ! -L "$f" ] && { cat "$f"; echo; }; done
  echo "@@extensionrestore"; for f in ${q(EXTENSIONS_DIR)}/*${EXTENSION_RESTORE_SUFFIX}; do [ -f "$f" ] && [ ! -L "$f" ] && { echo "=== $f"; cat "$f"; }; done
  echo "@@fdb"; for d in ${q(NET_DEVICES_DIR)}/${VXLAN_PREFIX}*; do [ -e "$d" ] && echo "${"$"}{d##*/}" && bridge -j fdb show dev "${"$"}{d##*/}" 2>/dev/null && echo; done
  # Their VLANs on a VLAN-aware bridge, ranges compressed (a segment's trunk carries 2-4094).
  echo "@@vxlanvlans"; for d in ${q(NET_DEVICES_DIR)}/${VXLAN_PREFIX}*; do [ -e "$d" ] && echo "${"$"}{d##*/}" && bridge -j -compressvlans vlan show dev "${"$"}{d##*/}" 2>/dev/null && echo; done
  echo "@@routes4"; ip -j -4 route show table main 2>/dev/null
  echo "@@routes6"; ip -j -6 route show table main 2>/dev/null
  echo "@@routerecords"; for f in ${q(ROUTES_DIR)}/*.json; do [ -f "$f" ] && [ ! -L "$f" ] && { cat "$f"; echo; }; done
  echo "@@chains"; vn_chains=$(nft -j list chains 2>/dev/null); echo "$vn_chains"
  # An earlier virtnet's tables of a network's own, by name: the networks' halves look here, not in the whole
  # listing (one scan per network of a listing that grows with the networks).
  vn_legacy=""
  case "$vn_chains" in *'"table": "${LEGACY_NFT_PREFIX}'*)
    vn_legacy=$(printf '%s\n' "$vn_chains" | grep -o '"table": "${LEGACY_NFT_PREFIX}[A-Za-z0-9_]*"');;
  esac
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
  # The network records: read by files_out's awk, with the networks' own files.
  vn_files="$vn_files$vn_k networks -
"
  for f in ${q(NETWORKS_STATE_DIR)}/*/${q(NETWORK_RECORD_FILE)}; do vn_add networks "$f"; done
  vn_iptv=$(iptables -V 2>/dev/null)
  echo "@@fwtools"; for t in nft iptables-restore ip6tables-restore iptables-save ip6tables-save firewall-cmd; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done; echo "$vn_iptv"
  # iptables-nft keeps a family's rules in nft tables of that family, which the chain listing shows: with none,
  # its save has nothing to list (two processes saved per family). Legacy iptables is always asked.
  vn_ipt4=1; vn_ipt6=1
  case "$vn_iptv" in *"(nf_tables)"*)
    case "$vn_chains" in *'"family": "ip",'*) ;; *) vn_ipt4="";; esac
    case "$vn_chains" in *'"family": "ip6",'*) ;; *) vn_ipt6="";; esac;;
  esac
  echo "@@ipt4"; [ -n "$vn_ipt4" ] && iptables-save 2>/dev/null | sed -n -E '/^\*|^:(VN-|DOCKER-USER |FORWARD )|VN-|^-A DOCKER-USER .*virtnet/{s/ \[[0-9]+:[0-9]+\]$//;p}'
  echo "@@ipt6"; [ -n "$vn_ipt6" ] && ip6tables-save 2>/dev/null | sed -n -E '/^\*|^:(VN-|DOCKER-USER |FORWARD )|VN-|^-A DOCKER-USER .*virtnet/{s/ \[[0-9]+:[0-9]+\]$//;p}'
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
  case "$vn_legacy" in *"\"table\": \"$legacytable\""*) echo "@@legacynft"; nft list table inet "$legacytable" 2>/dev/null;; esac
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
  vn_add segment "$segmentrec"
  vn_files="$vn_files$vn_k ports -
"
  for f in "$netdir"/${PORTS_DIR_NAME}/*.json; do vn_add ports "$f"; done
  [ -n "$port" ] && vn_add portrestore "$netdir/${PORTS_DIR_NAME}/$port.restore"
  # A Port's TAP: its owner (uid, -1 for none) and its VLANs; the owner a Port asks for, as a uid.
  [ -n "$port" ] && { echo "@@port"; echo "$port"; vn_o=""; { read -r vn_o < "/sys/class/net/$port/owner"; } 2>/dev/null; echo "$vn_o"
    # Who holds it open (tun's fdinfo names its device), looked for only when it has carrier or is down.
    vn_c=""; { read -r vn_c < "/sys/class/net/$port/carrier"; } 2>/dev/null
    if [ -e "/sys/class/net/$port" ] && [ "$vn_c" != 0 ]; then
      for f in $(grep -l -x -F "iff:	$port" /proc/[0-9]*/fdinfo/* 2>/dev/null); do
        vn_p=${"$"}{f#/proc/}; vn_p=${"$"}{vn_p%%/*}; vn_n=""; { read -r vn_n < "/proc/$vn_p/comm"; } 2>/dev/null; echo "holder $vn_p $vn_n"
      done
    fi
    bridge -j vlan show dev "$port" 2>/dev/null; echo; }
  # The TFTP root a network's change asks for: whether it is a directory.
  [ -n "$tftproot" ] && { echo "@@tftproot"; [ -d "$tftproot" ] && echo dir; }
  [ -n "$owner" ] && { echo "@@owneruid"; case "$owner" in *[!0-9]*) id -u -- "$owner" 2>/dev/null;; *) echo "$owner";; esac; }
  echo "@@dirs"; for d in ${[STATE_DIR, NETWORKS_STATE_DIR, ROUTES_DIR, EXTENSIONS_DIR, HOST_BRIDGES_DIR].map(q).join(" ")} "$netdir" "$rangesdir" "$netdir/${PORTS_DIR_NAME}" "$rundir" ${[NETWORKS_RUN_DIR, RUN_DIR].map(q).join(" ")}; do [ -d "$d" ] && echo "$d"; done
  # firewall-cmd is a Python program (0.1 s even to fail): without a system bus there is no firewalld to ask.
  [ -n "$br" ] && command -v firewall-cmd >/dev/null 2>&1 && { echo "@@fwzone"; if [ -S /run/dbus/system_bus_socket ]; then firewall-cmd --get-zone-of-interface="$br" 2>&1; echo "exit=$?"; else echo "exit=nobus"; fi; }
}`,
  // Files to read, a line each: network number, section, path ("-": the section alone). Names are validated,
  // so paths hold no blank or newline. Each network's list is a variable of its own (vn_next): one list for
  // all grows with every network, and the shell copies it whole at each line added.
  String.raw`vn_files=""
vn_add() { [ -f "$2" ] && [ ! -L "$2" ] && vn_files="$vn_files$vn_k $1 $2
"; }
vn_next() { eval "vn_files_$vn_k=\$vn_files"; vn_files=""; vn_k=$((vn_k + 1)); }`,
  // The host's files after a "@@@files 0" line, each network's after "@@@files <n>", each file as a section (a
  // process per file, or per network, was most of a round's probe). k starts as no number: "0" != "" is false
  // in awk.
  String.raw`files_out() {
  vn_next; vn_i=0
  while [ $vn_i -lt $vn_k ]; do eval "printf '%s' \"\$vn_files_$vn_i\""; vn_i=$((vn_i + 1)); done | awk 'BEGIN { k = "none" } {
    if ($1 != k) { print "@@@files " $1; k = $1; s = "" }
    if ($2 != s) print "@@" (s = $2)
    if ($3 != "-") { while ((getline l < $3) > 0) print l; close($3) }
  }'
}`,
  `probe() { probe_host; vn_next; probe_net; files_out; echo "@@end"; }`,
].join("\n");

/** What a Port's change asks of the probe: its TAP, and the uid of the owner it wants. */
export interface PortProbe {
  tap: string;
  owner?: string;
}

/**
 * `gateway`: also ask the kernel how it reaches this address (StaticRoute's directly-connected check); `port`:
 * also read this TAP and the user it should belong to (Port).
 */
export function probeArgs(
  name: string,
  bridge: string,
  paths: NetworkPaths,
  gateway = "",
  port?: PortProbe,
  tftpRoot = "",
): string[] {
  return [
    bridge,
    legacyNftTableName(name),
    paths.dnsmasqPid,
    paths.dnsmasqConf,
    paths.addnHosts,
    paths.dhcpHosts,
    paths.rangesDir,
    paths.restoreScript,
    paths.segment,
    gateway,
    paths.stateDir,
    paths.runDir,
    port?.tap ?? "",
    port?.owner ?? "",
    tftpRoot,
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
  `while [ $# -ge ${PROBE_VARS.length} ]; do`,
  `  vn_next; ${PROBE_PRELUDE}`,
  '  echo "@@@net"; probe_net',
  `  shift ${PROBE_VARS.length}`,
  "done",
  'files_out; echo "@@@done"',
].join("\n");

/**
 * The other read-only op: a bridge's forwarding database, its ports and their VLANs (observe/fdb.ts reads it).
 * Argument: the bridge. Exit 2 when the host has no such bridge.
 */
export const FDB_SCRIPT = String.raw`[ -d "/sys/class/net/$1/bridge" ] || { echo "no bridge $1" >&2; exit 2; }
echo "@@fdb"; bridge -j fdb show br "$1" || exit 1
echo; echo "@@links"; bridge -d -j link show || exit 1
echo; echo "@@vlans"; bridge -j vlan show 2>/dev/null
echo`;
