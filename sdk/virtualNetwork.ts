import * as pulumi from "@pulumi/pulumi";
import { lazyProvider } from "./lazyProvider";
import { splitConnection } from "../provider/resources/credentials";
import { ConnectionInput } from "./connection";

export type NetworkMode = "nat" | "route" | "open" | "isolated";

export interface VirtualNetworkArgs {
  /** How to reach the host. Optional when stack config sets virtnet:host and friends. */
  connection?: pulumi.Input<ConnectionInput>;
  /** Unique per host; defaults to the resource name. */
  name?: pulumi.Input<string>;
  mode: pulumi.Input<NetworkMode>;
  /** Brought back at boot as last applied (default true, like libvirt's autostart); false: transient. */
  autostart?: pulumi.Input<boolean>;
  /**
   * Which firewall carries the network's rules: "auto" (default: nftables where the host has nft, else
   * iptables, chosen when first applied and kept), "nftables" (chains "<id>.input" etc. in the table "inet virtnet")
   * or "iptables" (chains "VN-<hash>-*").
   */
  firewallBackend?: pulumi.Input<"auto" | "nftables" | "iptables">;
  ipv4?: pulumi.Input<{ cidr: pulumi.Input<string>; gateway?: pulumi.Input<string> }>;
  /** Alone or beside ipv4. Router advertisements (SLAAC) by default; stateful DHCPv6 with an IPv6 DhcpRange. */
  ipv6?: pulumi.Input<{ cidr: pulumi.Input<string>; gateway?: pulumi.Input<string> }>;
  /** nat/route only through this uplink. */
  forwardDevice?: pulumi.Input<string>;
  nat?: pulumi.Input<{
    addressRange?: pulumi.Input<{ start: pulumi.Input<string>; end: pulumi.Input<string> }>;
    portRange?: pulumi.Input<{ start: pulumi.Input<number>; end: pulumi.Input<number> }>;
    /** Masquerade IPv6 too (libvirt's <nat ipv6='yes'>); by default IPv6 is routed. */
    ipv6?: pulumi.Input<boolean>;
  }>;
  bridge?: pulumi.Input<{
    name?: pulumi.Input<string>;
    stp?: pulumi.Input<boolean>;
    delay?: pulumi.Input<number>;
    mtu?: pulumi.Input<number>;
    macAddress?: pulumi.Input<string>;
    /** firewalld zone to put the bridge in (e.g. "trusted"; libvirt uses "libvirt"); needs firewall-cmd on the host. */
    zone?: pulumi.Input<string>;
  }>;
  domain?: pulumi.Input<{ name: pulumi.Input<string>; localOnly?: pulumi.Input<boolean> }>;
  dns?: pulumi.Input<{
    enabled?: pulumi.Input<boolean>;
    forwarders?: pulumi.Input<
      pulumi.Input<string | { address: pulumi.Input<string>; domain?: pulumi.Input<string> }>[]
    >;
    hosts?: pulumi.Input<pulumi.Input<{ ip: pulumi.Input<string>; hostnames: pulumi.Input<string>[] }>[]>;
    /** SRV records, like libvirt's <srv>; the domain defaults to the network's domain. */
    srv?: pulumi.Input<
      pulumi.Input<{
        service: pulumi.Input<string>;
        protocol: pulumi.Input<"tcp" | "udp">;
        domain?: pulumi.Input<string>;
        target?: pulumi.Input<string>;
        port?: pulumi.Input<number>;
        priority?: pulumi.Input<number>;
        weight?: pulumi.Input<number>;
      }>[]
    >;
    txt?: pulumi.Input<pulumi.Input<{ name: pulumi.Input<string>; value: pulumi.Input<string> }>[]>;
  }>;
}

const networkProvider = lazyProvider("pulumi-virtnet/dist/provider/resources/network.js");

/** A libvirt-style virtual network on one host: bridge, nftables table, dnsmasq. */
export class VirtualNetwork extends pulumi.dynamic.Resource {
  declare readonly name: pulumi.Output<string>;
  declare readonly mode: pulumi.Output<NetworkMode>;
  declare readonly bridgeName: pulumi.Output<string>;
  declare readonly gatewayIp: pulumi.Output<string | undefined>;
  declare readonly cidr: pulumi.Output<string | undefined>;
  declare readonly prefixLength: pulumi.Output<number | undefined>;
  declare readonly netmask: pulumi.Output<string | undefined>;
  declare readonly ipv6Cidr: pulumi.Output<string | undefined>;
  declare readonly ipv6Gateway: pulumi.Output<string | undefined>;
  declare readonly ipv6PrefixLength: pulumi.Output<number | undefined>;
  /** "inet virtnet": the nftables table that holds the network's chains (none in mode "open" or with iptables). */
  declare readonly firewallTable: pulumi.Output<string | undefined>;
  /**
   * The backend in use and what virtnet put there: nftables, the table "inet virtnet" (shared by virtnet's
   * networks on the host) and the network's own chains in it; iptables, its chains.
   */
  declare readonly firewall: pulumi.Output<{
    backend: "nftables" | "iptables";
    table?: string;
    chains?: string[];
  }>;
  /** user@host:port of the host. */
  declare readonly host: pulumi.Output<string>;
  /** The host artifacts: nftables ruleset, dnsmasq config and hosts file. */
  declare readonly rendered: pulumi.Output<{
    nftables?: string;
    /** With firewallBackend "iptables": the chains as iptables-save / ip6tables-save print them. */
    iptables?: string;
    ip6tables?: string;
    dnsmasqConf?: string;
    dnsmasqHosts?: string;
  }>;
  /** The network, its DHCP ranges and routes via its bridge as libvirt network XML (`virsh net-define`). */
  declare readonly libvirtXml: pulumi.Output<string>;
  /** After a refresh: what the next `up` will repair. Empty when the host matches. */
  declare readonly drift: pulumi.Output<string[]>;
  declare readonly warnings: pulumi.Output<string[]>;

  constructor(name: string, args: VirtualNetworkArgs, opts?: pulumi.CustomResourceOptions) {
    const split = pulumi
      .output(args?.connection ?? {})
      .apply((c) => splitConnection(c as Record<string, any>));
    // Every key is listed, even when undefined: Pulumi makes output properties only for keys present here,
    // and `get` passes no args at all.
    const props: Record<string, any> = {
      name: args?.name ?? name,
      mode: args?.mode,
      autostart: args?.autostart,
      firewallBackend: args?.firewallBackend,
      ipv4: args?.ipv4,
      ipv6: args?.ipv6,
      forwardDevice: args?.forwardDevice,
      nat: args?.nat,
      bridge: args?.bridge,
      domain: args?.domain,
      dns: args?.dns,
      connection: pulumi.unsecret(split.apply((s) => s.connection)),
      __credentials: pulumi.secret(split.apply((s) => s.credentials ?? {})),
      bridgeName: undefined,
      gatewayIp: undefined,
      cidr: undefined,
      prefixLength: undefined,
      netmask: undefined,
      ipv6Cidr: undefined,
      ipv6Gateway: undefined,
      ipv6PrefixLength: undefined,
      firewallTable: undefined,
      firewall: undefined,
      host: undefined,
      rendered: undefined,
      libvirtXml: undefined,
      drift: undefined,
      warnings: undefined,
    };
    super(
      networkProvider,
      name,
      props,
      {
        ...opts,
        additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "__credentials"],
      },
      "virtnet",
      "VirtualNetwork",
    );
    this.warnings.apply((ws) => (ws ?? []).forEach((w) => pulumi.log.warn(w, this)));
  }

  /** Imports an existing network by id "<host>:<port>/<name>"; credentials come from stack config. */
  static get(name: string, id: pulumi.Input<pulumi.ID>, opts?: pulumi.CustomResourceOptions): VirtualNetwork {
    return new VirtualNetwork(name, undefined as unknown as VirtualNetworkArgs, { ...opts, id });
  }
}
