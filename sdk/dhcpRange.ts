import * as pulumi from "@pulumi/pulumi";
import { lazyProvider } from "./lazyProvider";
import { declaringStack } from "./stack";
import { networkRef } from "./networkRef";
import { VirtualNetwork } from "./virtualNetwork";
import { Inputs, inputProps } from "./inputs";
import { onNetworkOptions, readOnNetworkHost } from "./networkHost";
import { RANGE_INPUT_KEYS } from "../provider/model/inputs";
import type { DhcpReservationArgs, RangeArgs } from "../provider/model/inputs";

export type DhcpReservationInput = Inputs<DhcpReservationArgs>;

export type DhcpRangeArgs = Inputs<RangeArgs> & {
  /** The network the range serves; its host connection is reused (and stays secret). */
  network: VirtualNetwork;
};

const rangeProvider = lazyProvider("pulumi-virtnet/dist/provider/resources/dhcpRange.js");

/** A DHCP range of a VirtualNetwork, with static reservations; changes apply live. */
export class DhcpRange extends pulumi.dynamic.Resource {
  declare readonly start: pulumi.Output<string>;
  declare readonly end: pulumi.Output<string>;
  declare readonly size: pulumi.Output<number>;
  declare readonly leaseTime: pulumi.Output<string | undefined>;
  /** The lease time dnsmasq uses ("1h" unless leaseTime says otherwise). */
  declare readonly effectiveLeaseTime: pulumi.Output<string>;
  declare readonly rendered: pulumi.Output<{ dhcpRange: string; dhcpHosts?: string }>;

  constructor(name: string, args: DhcpRangeArgs, opts?: pulumi.CustomResourceOptions) {
    const net = args.network as any;
    const props: Record<string, any> = {
      ...inputProps(RANGE_INPUT_KEYS, args),
      name: args.name ?? name,
      network: networkRef(net),
      connection: net.connection,
      __credentials: net.__credentials,
      __stack: declaringStack(),
      size: undefined,
      effectiveLeaseTime: undefined,
      rendered: undefined,
      host: undefined,
    };
    super(rangeProvider, name, props, onNetworkOptions(args.network, opts), "virtnet", "DhcpRange");
  }
}

// A type only: erased at compile time, so the SDK still loads the provider lazily.
export type { Lease } from "../provider/orchestration/leases";
import type { Lease } from "../provider/orchestration/leases";

/** The network's current DHCP leases, read from the host like `virsh net-dhcp-leases`. */
export function getLeases(args: { network: VirtualNetwork }): Promise<Lease[]> {
  return readOnNetworkHost(
    args.network,
    (n) =>
      require("pulumi-virtnet/dist/provider/resources/dhcpRange.js").leases(
        n.connection,
        n.credentials,
        n.name,
      ),
    [],
  );
}
