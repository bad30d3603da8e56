// The one module that decides what virtnet's things are called on a host.
import { createHash } from "node:crypto";

export const STATE_DIR = "/var/lib/virtnet";
export const RUN_DIR = "/run/virtnet";
/** flock(2) on a directory that always exists: no lock file is created, so teardown leaves nothing behind. */
export const HOST_LOCK_PATH = "/run";
/**
 * A random token every successful apply writes under the host lock. A plan carries the token its probe saw,
 * and its apply script runs only if the token is still the same: no other virtnet apply came in between.
 */
export const GENERATION_FILE = `${STATE_DIR}/generation`;
/** virtnet's record of raising fs.inotify.max_user_instances: "<original> <raised to>". */
export const INOTIFY_MARKER = `${STATE_DIR}/inotify.virtnet`;
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

/** Before the shared table, each network had its own table "inet virtnet_<id>"; an apply removes it. */
export function legacyNftTableName(networkName: string): string {
  return `virtnet_${nftIdentifier(networkName)}`;
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

/** A stable locally administered MAC in libvirt's 52:54:00 prefix, derived from the network name. */
export function defaultBridgeMac(networkName: string): string {
  const h = digest(`mac:${networkName}`);
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
}

export function networkPaths(networkName: string): NetworkPaths {
  const stateDir = `${STATE_DIR}/networks/${networkName}`;
  const runDir = `${RUN_DIR}/networks/${networkName}`;
  return {
    stateDir,
    runDir,
    dnsmasqConf: `${stateDir}/dnsmasq.conf`,
    dnsmasqPid: `${runDir}/dnsmasq.pid`,
    addnHosts: `${stateDir}/hosts`,
    leases: `${stateDir}/dnsmasq.leases`,
    appliedSpec: `${stateDir}/network.json`,
    dhcpHosts: `${stateDir}/dhcp-hosts`,
    rangesDir: `${stateDir}/ranges`,
    restoreScript: `${stateDir}/restore.sh`,
  };
}

export function rangeRecordPath(networkName: string, rangeName: string): string {
  return `${networkPaths(networkName).rangesDir}/${rangeName}.json`;
}
