import * as pulumi from "@pulumi/pulumi";
import { lazyProvider } from "./lazyProvider";
import { declaringStack } from "./stack";
import { splitConnection } from "../provider/resources/credentials";
import { ConnectionInput } from "./connection";
import { VirtualNetwork } from "./virtualNetwork";
import { Inputs, inputProps } from "./inputs";
import { EXTENSION_INPUT_KEYS } from "../provider/model/inputs";
import type { ExtensionArgs } from "../provider/model/inputs";

export type NetworkExtensionArgs = Inputs<ExtensionArgs> & {
  /** The network whose segment is extended; its host keeps the gateway, dnsmasq and NAT. */
  network: VirtualNetwork;
  /** The host that joins the segment. */
  connection: pulumi.Input<ConnectionInput>;
};

const extensionProvider = lazyProvider("pulumi-virtnet/dist/provider/resources/networkExtension.js");

interface Member {
  connection: pulumi.Output<any>;
  credentials: pulumi.Output<any>;
}

// The extensions of each network made by this program: a change of one extension's membership updates every
// other member, so each one carries the others' connections (resolved once the program has made them all).
const extensionsOf = new WeakMap<VirtualNetwork, Member[]>();

/**
 * One more host on a VirtualNetwork's layer-2 segment, over the kernel's VXLAN: guests attached to
 * `bridgeName` there are on the network as if on its own bridge (its DHCP, DNS, gateway and NAT). Make a
 * network's extensions in the same program as the network.
 */
export class NetworkExtension extends pulumi.dynamic.Resource {
  /** The bridge on the joining host: attach guests here. */
  declare readonly bridgeName: pulumi.Output<string>;
  declare readonly vxlanName: pulumi.Output<string>;
  declare readonly effectiveVni: pulumi.Output<number>;
  /** The joining host's underlay address in use. */
  declare readonly effectiveLocalAddress: pulumi.Output<string>;
  /** The segment's MTU: guests are told it by DHCP and router advertisements. */
  declare readonly mtu: pulumi.Output<number>;
  /** Underlay addresses of every member: the network's host first. */
  declare readonly members: pulumi.Output<string[]>;
  declare readonly host: pulumi.Output<string>;
  /** After a refresh: what the next `up` will repair. Empty when the host matches. */
  declare readonly drift: pulumi.Output<string[]>;
  declare readonly warnings: pulumi.Output<string[]>;
  /** The network this extends (a Port on the extension is on this network). */
  readonly virtualNetwork: VirtualNetwork;

  constructor(name: string, args: NetworkExtensionArgs, opts?: pulumi.CustomResourceOptions) {
    const net = args.network as any;
    const split = pulumi.output(args.connection).apply((c) => splitConnection(c as Record<string, any>));
    const me: Member = {
      connection: pulumi.unsecret(split.apply((s) => s.connection)),
      credentials: pulumi.secret(split.apply((s) => s.credentials ?? {})),
    };
    const members = extensionsOf.get(args.network) ?? [];
    extensionsOf.set(args.network, [...members, me]);
    // Read once the network's name is known: by then the program has made its extensions.
    const peers = net.name.apply(() =>
      pulumi.all(
        (extensionsOf.get(args.network) ?? [])
          .filter((m) => m !== me)
          .map((m) =>
            pulumi
              .all([m.connection, m.credentials])
              .apply(([connection, credentials]) => ({ connection, credentials })),
          ),
      ),
    );
    const props: Record<string, any> = {
      ...inputProps(EXTENSION_INPUT_KEYS, args),
      name,
      network: pulumi
        .all([net.id, net.name, net.bridgeName])
        .apply(([id, n, bridgeName]) => ({ id, name: n, bridgeName })),
      networkConnection: net.connection,
      __networkCredentials: net.__credentials,
      connection: me.connection,
      __credentials: me.credentials,
      __stack: declaringStack(),
      __peers: pulumi.secret(peers),
      bridgeName: undefined,
      vxlanName: undefined,
      effectiveVni: undefined,
      effectiveLocalAddress: undefined,
      mtu: undefined,
      members: undefined,
      host: undefined,
      drift: undefined,
      warnings: undefined,
    };
    super(
      extensionProvider,
      name,
      props,
      {
        ...opts,
        dependsOn: [
          args.network,
          ...([] as pulumi.Resource[]).concat((opts?.dependsOn as pulumi.Resource[]) ?? []),
        ],
        additionalSecretOutputs: [
          ...(opts?.additionalSecretOutputs ?? []),
          "__credentials",
          "__networkCredentials",
          "__peers",
        ],
      },
      "virtnet",
      "NetworkExtension",
    );
    this.virtualNetwork = args.network;
    this.warnings.apply((ws) => (ws ?? []).forEach((w) => pulumi.log.warn(w, this)));
  }
}
