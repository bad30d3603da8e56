import * as pulumi from "@pulumi/pulumi";
import { lazyProvider } from "./lazyProvider";
import { declaringStack } from "./stack";
import { NetworkExtension } from "./networkExtension";
import { VirtualNetwork } from "./virtualNetwork";
import { Inputs, inputProps } from "./inputs";
import { onNetworkOptions, readOnNetworkHost } from "./networkHost";
import { declaredMode } from "./networkRef";
import { PORT_INPUT_KEYS } from "../provider/model/inputs";
import type { PortArgs as PortInputArgs } from "../provider/model/inputs";

export type PortArgs = Inputs<PortInputArgs> & {
  /**
   * The network whose bridge the TAP is on (any mode), or one of its NetworkExtensions (the TAP goes on the
   * extension's bridge, on the extension's host, with the segment's MTU); its host connection is reused (and
   * stays secret).
   */
  network: VirtualNetwork | NetworkExtension;
};

const portProvider = lazyProvider("pulumi-virtnet/dist/provider/resources/port.js");

/**
 * A TAP device on a network's bridge (or a NetworkExtension's), for a VM (qemu: `-netdev tap,ifname=<name>,script=no,downscript=no`):
 * persistent, up, with the network's MTU, its VLANs and isolation. VLANs, isolation and the MAC change in place
 * (the TAP stays, and a VM holding it stays attached); a new name, network, owner or multiQueue replaces it.
 */
export class Port extends pulumi.dynamic.Resource {
  /** The TAP device's name. */
  declare readonly name: pulumi.Output<string>;
  declare readonly bridgeName: pulumi.Output<string>;
  /** The guest NIC's MAC (given, or virtnet's stable default). */
  declare readonly macAddress: pulumi.Output<string>;
  /** After a refresh: what the next `up` will repair. Empty when the host matches. */
  declare readonly drift: pulumi.Output<string[]>;
  declare readonly warnings: pulumi.Output<string[]>;

  constructor(name: string, args: PortArgs, opts?: pulumi.CustomResourceOptions) {
    const on = args.network as any;
    // On an extension: the network's name and VLAN-awareness, the extension's bridge and host.
    const net = (
      args.network instanceof NetworkExtension ? args.network.virtualNetwork : args.network
    ) as any;
    const props: Record<string, any> = {
      ...inputProps(PORT_INPUT_KEYS, args),
      // The default TAP name comes from the resource's name.
      resourceName: name,
      // The mode: a mode "bridge" network's bridge is VLAN-aware as its host has it.
      network: pulumi
        .all([net.name, on.bridgeName, net.bridge, declaredMode(net)])
        .apply(([n, bridgeName, bridge, mode]) => ({
          name: n,
          bridgeName,
          mode,
          vlanFiltering: bridge?.vlanFiltering === true,
        })),
      connection: on.connection,
      __credentials: on.__credentials,
      __stack: declaringStack(),
      bridgeName: undefined,
      host: undefined,
      drift: undefined,
      warnings: undefined,
    };
    super(portProvider, name, props, onNetworkOptions(args.network, opts), "virtnet", "Port");
    this.warnings.apply((ws) => (ws ?? []).forEach((w) => pulumi.log.warn(w, this)));
  }
}

// Types only: erased at compile time, so the SDK still loads the provider lazily.
export type { Fdb, FdbEntry, FdbPort } from "../provider/observe/fdb";
export type { KernelPortVlan as FdbPortVlan } from "../provider/observe/observed";
import type { Fdb } from "../provider/observe/fdb";

/**
 * The network's bridge as the kernel has it, like `bridge fdb show br <bridge>` and `bridge link`: the MACs it
 * has learned and on which port, and each port's STP state, VLANs and isolation.
 */
export function getFdb(args: { network: VirtualNetwork }): Promise<Fdb> {
  return readOnNetworkHost(
    args.network,
    (n) =>
      require("pulumi-virtnet/dist/provider/resources/port.js").fdb(n.connection, n.credentials, {
        name: n.name,
        bridgeName: n.bridgeName,
      }),
    { entries: [], ports: [] },
  );
}
