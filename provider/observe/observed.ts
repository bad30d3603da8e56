// What a host has, as the probe (ops/probe.ts) reports it: the input of every planner.
import { DhcpRangeSpec } from "../model/dhcpRange";
import { MemberRecord, SegmentRecord } from "../model/networkExtension";
import { PortSpec } from "../model/port";
import { RouteSpec } from "../model/staticRoute";
import { IpFamily } from "../render/firewallIntent";
import { IptListing } from "../render/iptables";

/**
 * A record of a network's dependant on the host: its spec, and the stack that declared it ("<project>/<stack>",
 * with the organization first when the program knows it). Absent in records written before virtnet recorded it.
 */
export type Recorded<T> = T & { stack?: string };

/** A route as the kernel lists it (ip -j route). */
export interface KernelRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  metric?: number;
  protocol?: string | number;
}

export interface RouteObservation {
  kernel: KernelRoute[]; // every route of the family in the main table
  records: Recorded<RouteSpec>[];
  /** `ip route get <gateway>` as JSON, when a gateway was asked about (prefsrc: the source address). */
  gatewayLookup?: { gateway?: string; dev?: string; prefsrc?: string };
  dirs: string[];
}

/** An interface as far as stretched segments care: its MTU and addresses, and what a VXLAN device carries. */
export interface ObservedLink {
  name: string;
  kind?: string;
  alias?: string;
  mtu: number;
  up: boolean;
  master?: string;
  /** Addresses without prefix length. */
  addresses: string[];
  vxlan?: { vni: number; local?: string; port: number; learning: boolean };
  /** An 802.1Q sub-interface: its VLAN id and the interface it is on. */
  vlan?: { id: number; parent: string };
}

/** An entry of a VXLAN device's own forwarding database (`bridge fdb show dev`, entries with a dst). */
export interface FdbEntry {
  mac: string;
  dst: string;
  permanent: boolean;
}

export interface ObservedBridge {
  kind: string;
  alias?: string;
  mac: string;
  mtu: number;
  up: boolean;
  stp: boolean;
  forwardDelay: number; // hundredths of a second
  /** A VLAN-aware bridge (the kernel's vlan_filtering). */
  vlanFiltering?: boolean;
  ports: string[];
}

/** One VLAN of a bridge port, as `bridge vlan show` lists it. */
export interface KernelPortVlan {
  id: number;
  /** Untagged frames that arrive on the port belong to this VLAN. */
  pvid: boolean;
  /** Frames of this VLAN leave the port untagged. */
  untagged: boolean;
}

/** VLANs `id` to `end` of a bridge port with the same flags (`bridge -compressvlans vlan show`). */
export interface KernelVlanRange extends KernelPortVlan {
  end: number;
}

/** A Port's TAP as the kernel has it (the probe's listing of interfaces, sysfs and `bridge vlan show`). */
export interface ObservedPort {
  name: string;
  ifindex: number;
  /** "tun" for a TAP; anything else is not a TAP. */
  kind: string;
  /** "tap" or "tun", for kind "tun". */
  tunType?: string;
  alias?: string;
  master?: string;
  mtu: number;
  mac: string;
  up: boolean;
  /** Something holds the TAP open (a VM): the kernel shows carrier. */
  carrier: boolean;
  /** The processes that hold it open, as far as the host's /proc shows them. */
  holders: { pid: number; command: string }[];
  isolated: boolean;
  multiQueue: boolean;
  /** The uid allowed to open it; null: root only. */
  ownerUid: number | null;
  vlans: KernelPortVlan[];
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
  /** The stack that applied the network (see Recorded); absent in records from before. */
  stack?: string;
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
  /** All of virtnet's table as nft lists it (the chains of stretched segments are read from it). */
  nftTableListing?: string;
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
  ranges: Recorded<DhcpRangeSpec>[];
  networks: AppliedNetworkRecord[];
  /** Networks the probe saw that plans before this one in the same script remove (orchestration/round.ts). */
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
  /** Every interface (absent in hand-made observations: none). */
  links?: ObservedLink[];
  /** The VXLAN forwarding database of each of virtnet's VXLAN devices, by device. */
  fdb?: Record<string, FdbEntry[]>;
  /** The bridge VLANs of each of virtnet's VXLAN devices, by device, as `bridge -compressvlans vlan show` lists ranges. */
  vxlanVlans?: Record<string, KernelVlanRange[]>;
  /** This network's stretched segment, as its host records it. */
  segment?: SegmentRecord;
  /** The extensions this host is a member of, and the restore script of each (by network). */
  extensions?: MemberRecord[];
  extensionRestores?: Record<string, string>;
  /** The Port records in the network's directory (absent in hand-made observations: none). */
  ports?: Recorded<PortSpec>[];
  /** The TAP a Port's change asked about, when the host has an interface by its name. */
  port?: ObservedPort;
  /** That Port's boot-time restore file. */
  portRestore?: string;
  /** The uid of the owner a Port's change asked about; null: the host has no such user. */
  portOwnerUid?: number | null;
  /** Whether the TFTP root a network's change asked about is a directory on the host (absent: not asked). */
  tftpRootFound?: boolean;
}

/** Hand-made observations (unit tests) carry no firewall section: a host with nft and nothing else. */
export function firewallOf(observed: ObservedNetwork): ObservedFirewall {
  return (
    observed.firewall ?? {
      tools: ["nft"],
      iptablesNft: false,
      iptables: { ipv4: { tables: {} }, ipv6: { tables: {} } },
      nftChains: [],
      nftTables: [],
      virtnetTable: false,
      scaffold: [],
    }
  );
}

/** The host's record of a network, when it has one. */
export function recordOf(observed: ObservedNetwork, name: string): AppliedNetworkRecord | undefined {
  return observed.networks.find((n) => n.name === name);
}

/** The extension of `network` this host is a member of, when it is one. */
export function extensionOf(observed: ObservedNetwork, network: string): MemberRecord | undefined {
  return observed.extensions?.find((e) => e.network === network);
}

/** Is this dnsmasq ours for this config file? A pid file alone never proves it. */
export function isOurDnsmasq(observed: ObservedNetwork, confPath: string): boolean {
  const d = observed.dnsmasq;
  if (d?.startedByVirtnet) return true; // this network's record: started with its config by virtnet
  return !!d && /\/dnsmasq( \(deleted\))?$/.test(d.exe) && d.argv.includes(`--conf-file=${confPath}`);
}
