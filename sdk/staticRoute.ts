import * as pulumi from "@pulumi/pulumi";
import { lazyProvider } from "./lazyProvider";
import { declaringStack } from "./stack";
import { networkRef } from "./networkRef";
import { splitConnection } from "../provider/resources/credentials";
import { ConnectionInput } from "./connection";
import { VirtualNetwork } from "./virtualNetwork";
import { Inputs, inputProps } from "./inputs";
import { ROUTE_INPUT_KEYS } from "../provider/model/inputs";
import type { RouteArgs } from "../provider/model/inputs";

export type StaticRouteArgs = Inputs<RouteArgs> & {
  /** The host; or give `network` and the route goes via that network's bridge on its host. */
  connection?: pulumi.Input<ConnectionInput>;
  network?: VirtualNetwork;
};

const routeProvider = lazyProvider("pulumi-virtnet/dist/provider/resources/staticRoute.js");

/** A static route on a host, like libvirt's <route>; virtnet owns exactly the routes it created. */
export class StaticRoute extends pulumi.dynamic.Resource {
  declare readonly destination: pulumi.Output<string>;
  declare readonly gateway: pulumi.Output<string>;
  declare readonly metric: pulumi.Output<number | undefined>;
  /** The kernel route's metric: `metric`, else 0 (IPv4) or the kernel's 1024 (IPv6, also for metric 0). */
  declare readonly effectiveMetric: pulumi.Output<number>;
  declare readonly device: pulumi.Output<string | undefined>;
  declare readonly rendered: pulumi.Output<string>;
  declare readonly drift: pulumi.Output<string[]>;

  constructor(name: string, args: StaticRouteArgs, opts?: pulumi.CustomResourceOptions) {
    const net = args.network as any;
    let connection: pulumi.Input<any>;
    let credentials: pulumi.Input<any>;
    if (net) {
      connection = net.connection;
      credentials = net.__credentials;
    } else {
      const split = pulumi
        .output(args.connection ?? {})
        .apply((c) => splitConnection(c as Record<string, any>));
      connection = pulumi.unsecret(split.apply((s) => s.connection));
      credentials = pulumi.secret(split.apply((s) => s.credentials ?? {}));
    }
    const props: Record<string, any> = {
      ...inputProps(ROUTE_INPUT_KEYS, args),
      name: args.name ?? name,
      network: net ? networkRef(net) : undefined,
      connection,
      __credentials: credentials,
      __stack: declaringStack(),
      device: undefined,
      effectiveMetric: undefined,
      rendered: undefined,
      drift: undefined,
      host: undefined,
    };
    super(
      routeProvider,
      name,
      props,
      {
        ...opts,
        dependsOn: [
          ...(net ? [net] : []),
          ...([] as pulumi.Resource[]).concat((opts?.dependsOn as pulumi.Resource[]) ?? []),
        ],
        additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "__credentials"],
      },
      "virtnet",
      "StaticRoute",
    );
  }
}
