// What a user writes for each resource, declared once: the SDK takes these as its argument types (each value
// wrapped in pulumi.Input) and the provider's resources take the key lists as values. Imports nothing at run
// time, so the SDK may load it in a Pulumi program.
import type { Mode } from "./modes";

export type { Mode } from "./modes";

/** "auto": nftables when the host has nft, else iptables; decided per host when first applied. */
export const FIREWALL_BACKENDS = ["auto", "nftables", "iptables"] as const;

/** A VirtualNetwork's inputs besides its connection. */
export interface NetworkArgs {
  /** Unique per host; defaults to the resource name. */
  name?: string;
  mode: Mode;
  /** Brought back at boot as last applied (default true, like libvirt's autostart); false: transient. */
  autostart?: boolean;
  /**
   * Which firewall carries the network's rules: "auto" (default: nftables where the host has nft, else
   * iptables, chosen when first applied and kept), "nftables" (chains "<id>.input" etc. in the table "inet virtnet")
   * or "iptables" (chains "VN-<hash>-*").
   */
  firewallBackend?: (typeof FIREWALL_BACKENDS)[number];
  ipv4?: { cidr: string; gateway?: string };
  /** Alone or beside ipv4. Router advertisements (SLAAC) by default; stateful DHCPv6 with an IPv6 DhcpRange. */
  ipv6?: { cidr: string; gateway?: string };
  /** nat/route only through this uplink. */
  forwardDevice?: string;
  nat?: {
    addressRange?: { start: string; end: string };
    portRange?: { start: number; end: number };
    /** Masquerade IPv6 too (libvirt's <nat ipv6='yes'>); by default IPv6 is routed. */
    ipv6?: boolean;
  };
  bridge?: {
    name?: string;
    stp?: boolean;
    delay?: number;
    mtu?: number;
    macAddress?: string;
    /** firewalld zone to put the bridge in (e.g. "trusted"; libvirt uses "libvirt"); needs firewall-cmd on the host. */
    zone?: string;
    /**
     * A VLAN-aware switch (the kernel's vlan_filtering): Ports carry access or trunk VLANs; the bridge's own
     * address and ports without a VLAN are in VLAN 1, untagged.
     */
    vlanFiltering?: boolean;
  };
  domain?: { name: string; localOnly?: boolean };
  /**
   * The network's LAN continues on a VLAN of a trunk uplink: virtnet makes the 802.1Q sub-interface
   * "<uplink>.<id>" and puts it on the network's bridge (networks with the same id on several hosts are one LAN).
   */
  vlan?: { id: number; uplink: string };
  dns?: {
    enabled?: boolean;
    /**
     * Upstream DNS servers: an address, or { address, domain } for one domain's queries only, or { domain }
     * alone: that domain's queries go to the host's own resolvers (dnsmasq's server=/<domain>/#).
     */
    forwarders?: (string | { address?: string; domain?: string })[];
    /**
     * Names without a dot: true (default, as libvirt 9.0) forwards queries for them upstream when the network
     * does not know them; false answers them only from what the network knows (libvirt's forwardPlainNames='no').
     */
    forwardPlainNames?: boolean;
    /**
     * Serve the host's own /etc/hosts to guests, as libvirt's dnsmasq does. Default false: the host's names and
     * addresses (often internal ones) are not the guests' business.
     */
    etcHosts?: boolean;
    hosts?: { ip: string; hostnames: string[] }[];
    /** SRV records, like libvirt's <srv>; the domain defaults to the network's domain. */
    srv?: SrvArgs[];
    txt?: { name: string; value: string }[];
    /**
     * CNAME records (dnsmasq's cname=): `name` is an alias of `target`, which must be a name this network's DNS
     * answers itself (dns.hosts, a reservation's hostname, another CNAME); dnsmasq ignores one to any other name.
     */
    cname?: CnameArgs[];
    /** MX records (dnsmasq's mx-host=): mail for `domain` goes to `target`; preference defaults to 1. */
    mx?: MxArgs[];
  };
  /**
   * dnsmasq options of your own, one per entry ("log-queries", "dhcp-option=option:ntp-server,10.50.1.1"),
   * appended to the network's dnsmasq configuration: at your own responsibility. Options virtnet owns (its
   * files, interfaces, addresses, user, scripts) are refused.
   */
  dnsmasqOptions?: string[];
  /**
   * TFTP from the network's gateway (libvirt's <tftp root>), for network boot: `root` must be a directory on
   * the host, readable by the user dnsmasq runs as ("dnsmasq"). IPv4.
   */
  tftp?: { root: string };
  /**
   * The boot file DHCP offers guests (libvirt's <bootp file server>): `server` is the TFTP server that holds
   * it, by default the network's gateway (its own `tftp`). IPv4.
   */
  bootp?: { file: string; server?: string };
}

export interface CnameArgs {
  name: string;
  target: string;
}

export interface MxArgs {
  domain: string;
  target: string;
  preference?: number;
}

/** Like libvirt's <srv service protocol domain target port priority weight/>. */
export interface SrvArgs {
  service: string;
  protocol: "tcp" | "udp";
  domain?: string;
  target?: string;
  port?: number;
  priority?: number;
  weight?: number;
}

/** The input properties of a VirtualNetwork (besides connection), in the order the SDK lists them. */
export const NETWORK_INPUT_KEYS = [
  "name",
  "mode",
  "autostart",
  "firewallBackend",
  "ipv4",
  "ipv6",
  "forwardDevice",
  "nat",
  "bridge",
  "domain",
  "vlan",
  "dns",
  "dnsmasqOptions",
  "tftp",
  "bootp",
] as const;

/**
 * A fixed address for one client. On an IPv4 range the client is its `mac`; on an IPv6 range (DHCPv6, which
 * names clients by DUID, not MAC) its `duid`, its `hostname` (the name the client sends), or both.
 */
export interface DhcpReservationArgs {
  /** IPv4 ranges: the guest's MAC address, required there. */
  mac?: string;
  /** IPv6 ranges: the DHCPv6 client's DUID, hex bytes separated by colons ("00:03:00:01:52:54:00:aa:00:01"). */
  duid?: string;
  /** An address of the range's family, in the network's subnet (inside the range or not). */
  ip: string;
  /** The guest's DNS name; on an IPv6 range, without duid, also the name the client must send. */
  hostname?: string;
}

/** A DhcpRange's inputs besides its network. */
export interface RangeArgs {
  /** Unique within the network; defaults to the resource name. */
  name?: string;
  /**
   * start and end: the range's ends; both left out with `hosts` given: static-only DHCP (only reservations),
   * IPv6 when the reservations are (a duid, or an IPv6 ip).
   */
  start?: string;
  end?: string;
  /** dnsmasq lease time: "3600", "30m", "1h", "7d" or "infinite"; default "1h". */
  leaseTime?: string;
  hosts?: DhcpReservationArgs[];
}

export const RANGE_INPUT_KEYS = ["name", "start", "end", "leaseTime", "hosts"] as const;

/** A StaticRoute's inputs besides its connection or network. */
export interface RouteArgs {
  /** Unique per host; defaults to the resource name. */
  name?: string;
  destination: string;
  /** Must be on a directly connected network of the host. */
  gateway: string;
  /** Default 0; for IPv6, 0 or none is the kernel's 1024. */
  metric?: number;
}

export const ROUTE_INPUT_KEYS = ["name", "destination", "gateway", "metric"] as const;

/** A NetworkExtension's inputs besides its network and connection. */
export interface ExtensionArgs {
  /** The joining host's underlay address (default: its source address towards the network's host). */
  localAddress?: string;
  /** The segment's VXLAN network identifier, 1 to 16777215 (default: derived from the network, stable). */
  vni?: number;
}

export const EXTENSION_INPUT_KEYS = ["localAddress", "vni"] as const;

/** A Port's VLANs: an access VLAN (its PVID, untagged), or a trunk with an optional native (untagged) VLAN. */
export type PortVlanArgs = number | { tagged?: number[]; untagged?: number };

/** A Port's inputs besides its network. */
export interface PortArgs {
  /** The TAP device's name (at most 15 characters); default "vt-<resource name>", shortened with a hash. */
  name?: string;
  /** The guest NIC's MAC: recorded, shown in getFdb; default a stable 52:54:00:xx:xx:xx. */
  macAddress?: string;
  /** A user name or uid allowed to open the TAP without root (qemu's -netdev tap,ifname=...). */
  owner?: string | number;
  /** A multi-queue TAP (one queue per vCPU: -netdev tap,queues=N). */
  multiQueue?: boolean;
  /**
   * On a network with bridge.vlanFiltering (or of mode "bridge" over a VLAN-aware bridge: a HostBridge's
   * vlanFiltering): an access VLAN (1-4094), or { tagged: [...], untagged? }.
   */
  vlan?: PortVlanArgs;
  /** Isolated ports reach the gateway and other ports, not each other. */
  isolated?: boolean;
}

export const PORT_INPUT_KEYS = ["name", "macAddress", "owner", "multiQueue", "vlan", "isolated"] as const;

/** A HostBridge's inputs besides its connection. */
export interface HostBridgeArgs {
  /** The bridge's name (at most 15 characters); defaults to the resource name. */
  name?: string;
  /** The NIC, bond or VLAN interface to enslave; its addresses and routes move to the bridge. */
  uplink: string;
  /** Spanning tree (default false). */
  stp?: boolean;
  /** Forward delay in seconds (default 0; 2-30 with stp). */
  forwardDelay?: number;
  /** The bridge's and the uplink's MTU (default: the uplink's as it is). */
  mtu?: number;
  /**
   * A VLAN-aware bridge (the kernel's vlan_filtering), as on VirtualNetwork's bridge: the uplink becomes a trunk
   * (VLANs 2-4094 tagged, VLAN 1 untagged), the host's own address stays in VLAN 1, and Ports of a mode "bridge"
   * VirtualNetwork over it carry access or trunk VLANs. Changes in place, under the same guard as the move.
   */
  vlanFiltering?: boolean;
  /** Seconds (5-600, default 30) the host waits for virtnet's confirmation over a new SSH connection before it rolls back by itself. */
  confirmTimeout?: number;
}

export const HOST_BRIDGE_INPUT_KEYS = [
  "name",
  "uplink",
  "stp",
  "forwardDelay",
  "mtu",
  "vlanFiltering",
  "confirmTimeout",
] as const;

/**
 * What arrives for the inputs `T` before validation: every field optional, strings of any value (a
 * preview's unknowns among them).
 */
export type Unchecked<T> = [T] extends [string]
  ? string
  : [T] extends [number]
    ? number
    : [T] extends [boolean]
      ? boolean
      : T extends readonly (infer U)[]
        ? Unchecked<U>[]
        : T extends object
          ? { [K in keyof T]?: Unchecked<NonNullable<T[K]>> }
          : T;

// Each key list names exactly its interface's keys.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _networkKeys: Same<(typeof NETWORK_INPUT_KEYS)[number], keyof NetworkArgs> = true;
const _rangeKeys: Same<(typeof RANGE_INPUT_KEYS)[number], keyof RangeArgs> = true;
const _routeKeys: Same<(typeof ROUTE_INPUT_KEYS)[number], keyof RouteArgs> = true;
const _extensionKeys: Same<(typeof EXTENSION_INPUT_KEYS)[number], keyof ExtensionArgs> = true;
const _portKeys: Same<(typeof PORT_INPUT_KEYS)[number], keyof PortArgs> = true;
const _hostBridgeKeys: Same<(typeof HOST_BRIDGE_INPUT_KEYS)[number], keyof HostBridgeArgs> = true;
