import * as pulumi from "@pulumi/pulumi";
import { lazyProvider } from "./lazyProvider";
import { declaringStack } from "./stack";
import { declaredSiblings, declareSibling, rememberNetworkArgs } from "./networkRef";
import { splitConnection } from "../provider/resources/credentials";
import { ConnectionInput } from "./connection";
import { Inputs, inputProps } from "./inputs";
import { NETWORK_INPUT_KEYS } from "../provider/model/inputs";
import type { Mode, NetworkArgs } from "../provider/model/inputs";

export type NetworkMode = Mode;

export type VirtualNetworkArgs = Inputs<NetworkArgs> & {
  /** How to reach the host. Optional when stack config sets virtnet:host and friends. */
  connection?: pulumi.Input<ConnectionInput>;
};

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
      ...inputProps(NETWORK_INPUT_KEYS, args),
      // The networks this program declared before this one: check refuses a subnet one of them has on this host.
      __siblings: args ? declaredSiblings() : undefined,
      // The stack that owns the network: its delete refuses while another stack's dependants are on it.
      __stack: args ? declaringStack() : undefined,
      name: args?.name ?? name,
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
    rememberNetworkArgs(this, args);
    if (args) declareSibling(args.name ?? name, args);
    this.warnings.apply((ws) => (ws ?? []).forEach((w) => pulumi.log.warn(w, this)));
  }

  /** Imports an existing network by id "<host>:<port>/<name>"; credentials come from stack config. */
  static get(name: string, id: pulumi.Input<pulumi.ID>, opts?: pulumi.CustomResourceOptions): VirtualNetwork {
    return new VirtualNetwork(name, undefined as unknown as VirtualNetworkArgs, { ...opts, id });
  }
}
