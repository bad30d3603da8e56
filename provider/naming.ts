// The one module that decides what virtnet's things are called on a host: every name and every path.
import { createHash } from "node:crypto";

export const STATE_DIR = "/var/lib/virtnet";
export const RUN_DIR = "/run/virtnet";
/** Each network's own directories are "<name>" in these two. */
export const NETWORKS_STATE_DIR = `${STATE_DIR}/networks`;
export const NETWORKS_RUN_DIR = `${RUN_DIR}/networks`;
/** flock(2) on a directory that always exists: no lock file is created, so teardown leaves nothing behind. */
export const HOST_LOCK_PATH = "/run";
/**
 * A random token every successful apply writes under the host lock. A plan carries the token its probe saw,
 * and its apply script runs only if the token is still the same: no other virtnet apply came in between.
 */
export const GENERATION_FILE = `${STATE_DIR}/generation`;
/** virtnet's record of raising fs.inotify.max_user_instances: "<original> <raised to>". */
export const INOTIFY_MARKER = `${STATE_DIR}/inotify.virtnet`;
/** virtnet's records of turning forwarding on (empty files): the last network that needs it turns it off. */
export const FORWARDING_MARKERS = {
  ipv4: `${STATE_DIR}/ip_forward.virtnet`,
  ipv6: `${STATE_DIR}/ip6_forward.virtnet`,
} as const;
/** virtnet's record of the iptables-nft tables and built-in chains it made: "ip filter", "ip filter INPUT". */
export const IPTABLES_SCAFFOLD = `${STATE_DIR}/iptables-scaffold`;

/** Kernel settings virtnet changes (sysctl names). */
export const SYSCTL = {
  ipv4Forwarding: "net.ipv4.ip_forward",
  ipv6Forwarding: "net.ipv6.conf.all.forwarding",
  inotifyInstances: "fs.inotify.max_user_instances",
  /** Read only: a new random uuid at every read. */
  randomUuid: "kernel.random.uuid",
} as const;

/** Where a sysctl is read: /proc/sys/net/ipv4/ip_forward for net.ipv4.ip_forward. */
export function sysctlPath(name: string): string {
  return `/proc/sys/${name.replace(/\./g, "/")}`;
}

/** Static routes: virtnet's route protocol number (unassigned in iproute2's rt_protos) and its records. */
export const ROUTE_PROTO = 242;
export const ROUTES_DIR = `${STATE_DIR}/routes`;

export function routeRecordPath(routeName: string): string {
  return `${ROUTES_DIR}/${routeName}.json`;
}

/** What the boot-time restore runs for one route. */
export function routeRestorePath(routeName: string): string {
  return `${ROUTES_DIR}/${routeName}.restore`;
}

/** Boot-time restore: one entry point, run by a systemd unit on hosts that run systemd. */
export const RESTORE_ENTRY = `${STATE_DIR}/restore`;
/** Exists on a host that runs systemd. */
export const SYSTEMD_RUNTIME_DIR = "/run/systemd/system";
export const SYSTEMD_UNIT_NAME = "virtnet-restore.service";
export const SYSTEMD_UNIT_PATH = `/etc/systemd/system/${SYSTEMD_UNIT_NAME}`;
export const SYSTEMD_WANTS_DIR = "/etc/systemd/system/multi-user.target.wants";
export const SYSTEMD_WANTS_LINK = `${SYSTEMD_WANTS_DIR}/${SYSTEMD_UNIT_NAME}`;

/** A round script's own temporary directory: "<TMPDIR>/virtnet-round.XXXXXX". */
export const ROUND_TMP_PREFIX = "virtnet-round.";

export const MAX_IFNAME = 15; // IFNAMSIZ - 1

function digest(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** A bridge name at most 15 characters long: "vn-<name>", or a shortened name plus a hash when it is too long. */
export function defaultBridgeName(networkName: string): string {
  const plain = `vn-${networkName}`;
  if (plain.length <= MAX_IFNAME) return plain;
  return `vn-${networkName.slice(0, 7)}-${digest(networkName).slice(0, 4)}`;
}

/**
 * The 802.1Q sub-interface of a network's `vlan`: "<uplink>.<id>", or "vl<hash>.<id>" when that is longer
 * than an interface name may be.
 */
export function vlanLinkName(uplink: string, id: number): string {
  const plain = `${uplink}.${id}`;
  return plain.length <= MAX_IFNAME ? plain : `vl${digest(`vlan:${uplink}`).slice(0, 6)}.${id}`;
}

/** The one nft table ("inet virtnet") that holds every network's chains. */
export const NFT_FAMILY = "inet";
export const NFT_TABLE = "virtnet";
/** "inet virtnet", as nft commands and listings name the table. */
export const NFT_TABLE_REF = `${NFT_FAMILY} ${NFT_TABLE}`;

/**
 * Each network's chains in NFT_TABLE are "<id>.input", "<id>.output", "<id>.forward" and "<id>.postrouting".
 * One shared table, not one per network: nft 1.0.6 reads every table's chains for any chain-level command,
 * so per-network tables made each network's firewall change cost more the more networks a host had.
 */
export function nftChainId(networkName: string): string {
  const id = nftIdentifier(networkName);
  return /^[a-zA-Z_]/.test(id) ? id : `_${id}`; // nft reads a leading digit as a number
}

/** How the nft tables of an earlier virtnet, one per network, begin. */
export const LEGACY_NFT_PREFIX = "virtnet_";

/** Before the shared table, each network had its own table "inet virtnet_<id>"; an apply removes it. */
export function legacyNftTableName(networkName: string): string {
  return `${LEGACY_NFT_PREFIX}${nftIdentifier(networkName)}`;
}

/** nft identifiers allow [a-zA-Z_][a-zA-Z0-9_]*; the hash keeps names that differ only in '.'/'-' apart. */
function nftIdentifier(networkName: string): string {
  const readable = networkName.replace(/[^a-zA-Z0-9_]/g, "_").slice(0, 32);
  return `${readable}_${digest(networkName).slice(0, 6)}`;
}

/**
 * The prefix of a network's iptables chains, "VN-<hash>": the chains are "<prefix>-IN", "-OUT", "-FWD" and
 * "-NAT" (at most 15 characters; iptables allows 28). Every iptables line that names "VN-" is virtnet's.
 */
export function iptablesChainPrefix(networkName: string): string {
  return `${IPTABLES_CHAIN_MARK}${digest(`iptables:${networkName}`).slice(0, 8)}`;
}

export const IPTABLES_CHAIN_MARK = "VN-";

/** The comment on every rule virtnet puts in a chain it does not own (jumps, Docker's DOCKER-USER). */
export function iptablesComment(networkName: string): string {
  return `virtnet: network ${networkName}`;
}

/** Written to the bridge's ifalias: the kernel-side proof that virtnet owns a bridge. */
export function bridgeAlias(networkName: string): string {
  return `virtnet:${networkName}`;
}

/**
 * A stable MAC in libvirt's 52:54:00 prefix, derived from the network name; with `host`, from the host too: a
 * network on a VLAN of a trunk shares its LAN with same-named networks on other hosts, and two bridges with
 * one MAC on one LAN each take the other's frames for their own.
 */
export function defaultBridgeMac(networkName: string, host?: string): string {
  const h = digest(host === undefined ? `mac:${networkName}` : `mac:${host}/${networkName}`);
  return `52:54:00:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}`;
}

export interface NetworkPaths {
  stateDir: string;
  runDir: string;
  dnsmasqConf: string;
  dnsmasqPid: string;
  addnHosts: string;
  leases: string;
  appliedSpec: string;
  dhcpHosts: string;
  rangesDir: string;
  restoreScript: string;
  /** The network's stretched segment on its own host (model/networkExtension.ts SegmentRecord). */
  segment: string;
}

/** A network's record and restore script, in its state directory. */
export const NETWORK_RECORD_FILE = "network.json";
export const NETWORK_RESTORE_FILE = "restore.sh";

export function networkPaths(networkName: string): NetworkPaths {
  const stateDir = `${NETWORKS_STATE_DIR}/${networkName}`;
  const runDir = `${NETWORKS_RUN_DIR}/${networkName}`;
  return {
    stateDir,
    runDir,
    dnsmasqConf: `${stateDir}/dnsmasq.conf`,
    dnsmasqPid: `${runDir}/dnsmasq.pid`,
    addnHosts: `${stateDir}/hosts`,
    leases: `${stateDir}/dnsmasq.leases`,
    appliedSpec: `${stateDir}/${NETWORK_RECORD_FILE}`,
    dhcpHosts: `${stateDir}/dhcp-hosts`,
    rangesDir: `${stateDir}/ranges`,
    restoreScript: `${stateDir}/${NETWORK_RESTORE_FILE}`,
    segment: `${stateDir}/segment.json`,
  };
}

export function rangeRecordPath(networkName: string, rangeName: string): string {
  return `${networkPaths(networkName).rangesDir}/${rangeName}.json`;
}

/** A network's Ports (TAP devices) are recorded in its own directory: "<stateDir>/ports/<tap>.json". */
export const PORTS_DIR_NAME = "ports";

export function portsDir(networkName: string): string {
  return `${networkPaths(networkName).stateDir}/${PORTS_DIR_NAME}`;
}

export function portRecordPath(networkName: string, tap: string): string {
  return `${portsDir(networkName)}/${tap}.json`;
}

/** What the boot-time restore runs for one Port, after its network's restore.sh. */
export function portRestorePath(networkName: string, tap: string): string {
  return `${portsDir(networkName)}/${tap}.restore`;
}

/** Written to a Port's TAP ifalias: the kernel-side proof that virtnet owns it, and for which network. */
export function portAlias(networkName: string): string {
  return `${PORT_ALIAS_PREFIX}${networkName}`;
}

export const PORT_ALIAS_PREFIX = "virtnet-port:";

const IFNAME_CHARS = /^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$/;

/**
 * A Port's TAP name when none is given: "vt-<resource name>", or a shortened name plus a hash when that is too
 * long or holds characters an interface name may not have. Stable: the same resource gets the same name.
 */
export function defaultPortName(resourceName: string): string {
  const plain = `vt-${resourceName}`;
  if (plain.length <= MAX_IFNAME && IFNAME_CHARS.test(resourceName)) return plain;
  const readable = resourceName.replace(/[^a-zA-Z0-9_.-]/g, "-").slice(0, 6);
  return `vt-${readable}-${digest(`port:${resourceName}`).slice(0, 5)}`;
}

/**
 * The guest NIC's MAC when a Port is given none: stable, in libvirt's 52:54:00 prefix, from the host, the
 * network and the TAP's name (networks with the same VLAN on several hosts are one LAN).
 */
export function defaultGuestMac(host: string, networkName: string, tap: string): string {
  const h = digest(`guest-mac:${host}/${networkName}/${tap}`);
  return `52:54:00:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}`;
}

/**
 * The TAP's own (host-side) MAC: the guest's with its first byte 0xfe, as libvirt does it. Stable across
 * re-creation, and never the lowest on the bridge (the kernel would give a bridge without a set MAC the lowest).
 */
export function tapMac(guestMac: string): string {
  return `fe${guestMac.slice(2)}`;
}

/** Paths in one network's own directories; everything else of virtnet's on a host is shared by its networks. */
export function isNetworkPath(path: string): boolean {
  return path.startsWith(`${NETWORKS_STATE_DIR}/`) || path.startsWith(`${NETWORKS_RUN_DIR}/`);
}

// ---------------------------------------------------------------------------------------------------------
// Stretched segments (NetworkExtension): a network's layer 2 carried to other hosts by the kernel's VXLAN.

/** IANA's VXLAN port; every member of every segment listens on it. */
export const VXLAN_PORT = 4789;
/** What VXLAN adds to a frame: outer IP header (IPv4 20, IPv6 40), UDP 8, VXLAN 8 and the inner Ethernet 14. */
export function vxlanOverhead(underlay: "ipv4" | "ipv6"): number {
  return underlay === "ipv4" ? 50 : 70;
}
export const MAX_VNI = 16777215; // 24 bits

/** Virtnet's VXLAN devices are "vx-<network>", or a shortened name plus a hash when that is too long. */
export const VXLAN_PREFIX = "vx-";
export function vxlanName(networkName: string): string {
  const plain = `${VXLAN_PREFIX}${networkName}`;
  if (plain.length <= MAX_IFNAME) return plain;
  return `${VXLAN_PREFIX}${networkName.slice(0, 7)}-${digest(networkName).slice(0, 4)}`;
}

/** The VXLAN device's ifalias: virtnet's proof that it made the device, on every member. */
export function vxlanAlias(networkName: string): string {
  return `${VXLAN_ALIAS_MARK}${networkName}`;
}
export const VXLAN_ALIAS_MARK = "virtnet-vxlan:";

/** The ifalias of an extension's bridge (the network's own bridge has bridgeAlias). */
export function extensionBridgeAlias(networkName: string): string {
  return `virtnet-extension:${networkName}`;
}

/**
 * An extension's bridge gets a MAC of its own, stable for the network and the member's underlay address: the
 * network's bridge MAC is its gateway's on the same segment, and a bridge takes frames to its own MAC.
 */
export function extensionBridgeMac(networkName: string, localAddress: string): string {
  const h = digest(`mac:${networkName}@${localAddress}`);
  return `52:54:00:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}`;
}

/** A network's VNI unless `vni` says otherwise: from its id ("<host>:<port>/<name>"), stable, never 0. */
export function defaultVni(networkId: string): number {
  return 1 + (parseInt(digest(`vni:${networkId}`).slice(0, 8), 16) % MAX_VNI);
}

/** The segment's filter of UDP 4789 on a member: "<id>.vxlan" in NFT_TABLE, beside the network's own chains. */
export function nftSegmentChain(networkName: string): string {
  return `${nftChainId(networkName)}.vxlan`;
}

/** An extension host's records: the membership (what it was last applied with) and its boot-time restore. */
export const EXTENSIONS_DIR = `${STATE_DIR}/extensions`;
export const EXTENSION_RESTORE_SUFFIX = ".restore";
export function extensionPaths(networkName: string): { record: string; restore: string } {
  return {
    record: `${EXTENSIONS_DIR}/${networkName}.json`,
    restore: `${EXTENSIONS_DIR}/${networkName}${EXTENSION_RESTORE_SUFFIX}`,
  };
}

/** One entry per interface of the reader's network namespace (unlike /sys, which may be another one's). */
export const NET_DEVICES_DIR = "/proc/sys/net/ipv4/conf";

/** Writing 1 turns IPv6 off on the interface (a sysctl whose name may hold a '.', so spelled as a path). */
export function ipv6DisabledPath(ifname: string): string {
  return `/proc/sys/net/ipv6/conf/${ifname}/disable_ipv6`;
}

/** A HostBridge's records (the uplink's saved state, the move and its rollback) and its run files. */
export const HOST_BRIDGES_DIR = `${STATE_DIR}/host-bridges`;
export const HOST_BRIDGES_RUN_DIR = `${RUN_DIR}/host-bridges`;
export const HOST_BRIDGE_RESTORE_FILE = "restore.sh";

export interface HostBridgePaths {
  stateDir: string;
  /** The uplink as it was before the move: `ip -j` listings of its link, addresses and routes. */
  saved: string;
  /** `ip -batch` lines that move the uplink into the bridge, and those that put it back. */
  move: string;
  rollback: string;
  /** With a DHCP client on the uplink: the scripts that carry it along with each batch. */
  moveCarry: string;
  rollbackCarry: string;
  /** `bridge -batch` lines run after the move: the uplink's trunk VLANs (empty without vlanFiltering). */
  moveVlans: string;
  /** An in-place change of vlanFiltering: its `ip -batch` and `bridge -batch` lines, and their undo. */
  vlans: { apply: string; applyVlans: string; undo: string; undoVlans: string };
  /** Brings the bridge back at boot (run before the networks'). */
  restore: string;
  runDir: string;
  /** Written by virtnet over a new SSH connection: the detached change keeps the new state. */
  confirm: string;
  /** What the detached change did last: "moving", "moved", "confirmed", "rolled back: <why>". */
  status: string;
  log: string;
}

export function hostBridgePaths(name: string): HostBridgePaths {
  const stateDir = `${HOST_BRIDGES_DIR}/${name}`;
  const runDir = `${HOST_BRIDGES_RUN_DIR}/${name}`;
  return {
    stateDir,
    saved: `${stateDir}/uplink.json`,
    move: `${stateDir}/move.batch`,
    rollback: `${stateDir}/rollback.batch`,
    moveCarry: `${stateDir}/move.client.sh`,
    rollbackCarry: `${stateDir}/rollback.client.sh`,
    moveVlans: `${stateDir}/move.vlans`,
    vlans: {
      apply: `${runDir}/vlans.batch`,
      applyVlans: `${runDir}/vlans.vlans`,
      undo: `${runDir}/vlans-undo.batch`,
      undoVlans: `${runDir}/vlans-undo.vlans`,
    },
    restore: `${stateDir}/${HOST_BRIDGE_RESTORE_FILE}`,
    runDir,
    confirm: `${runDir}/confirm`,
    status: `${runDir}/status`,
    log: `${runDir}/log`,
  };
}

/** A HostBridge's ifalias: the kernel-side proof that virtnet made the bridge, and for which uplink. */
export function hostBridgeAlias(uplink: string): string {
  return `virtnet-host-bridge:${uplink}`;
}
