import * as pulumi from "@pulumi/pulumi";
import type { VirtualNetwork, VirtualNetworkArgs } from "./virtualNetwork";

// The arguments each VirtualNetwork of this program was declared with: a range or route declared with
// `network: net` learns the subnet from them while the network's own outputs are not known yet (preview).
const declared = new WeakMap<VirtualNetwork, VirtualNetworkArgs>();

export function rememberNetworkArgs(net: VirtualNetwork, args: VirtualNetworkArgs | undefined): void {
  if (args) declared.set(net, args);
}

// The subnets and hosts of the networks each program run declared, by its stack resource (a process may run
// several programs one after the other: the engine-path runner does).
const siblings = new WeakMap<object, pulumi.Output<Record<string, unknown>>[]>();

function programKey(): object | undefined {
  return pulumi.runtime.getStackResource();
}

/** Records a network the program declares, for the overlap check of the networks declared after it. */
export function declareSibling(name: pulumi.Input<string>, args: VirtualNetworkArgs): void {
  const key = programKey();
  if (!key) return;
  const list = siblings.get(key) ?? [];
  siblings.set(key, list);
  const facts = pulumi.all([name, args.connection, args.ipv4, args.ipv6]).apply(([n, c, v4, v6]) => {
    const conn = (c ?? {}) as { host?: string; port?: number };
    const connection: Record<string, unknown> = {};
    if (conn.host !== undefined) connection.host = conn.host;
    if (conn.port !== undefined) connection.port = conn.port;
    const f: Record<string, unknown> = { name: n, connection };
    if (v4?.cidr !== undefined) f.cidr = v4.cidr;
    if (v6?.cidr !== undefined) f.ipv6Cidr = v6.cidr;
    return f;
  });
  list.push(pulumi.unsecret(facts));
}

/** The networks declared so far in this program run (their name, host and subnets), for a new one's check. */
export function declaredSiblings(): pulumi.Output<unknown[]> | undefined {
  const key = programKey();
  const list = key ? siblings.get(key) : undefined;
  return list?.length ? pulumi.all([...list]) : undefined;
}

/** The declared value when the program gave one, else the network's output. */
function declaredOr<T>(
  net: VirtualNetwork,
  family: "ipv4" | "ipv6",
  key: "cidr" | "gateway",
  output: pulumi.Output<T>,
): pulumi.Output<T | string> {
  const args = declared.get(net);
  if (!args || args[family] === undefined) return output;
  return pulumi
    .output(args[family] as pulumi.Input<{ cidr?: string; gateway?: string }>)
    .apply(
      (v): pulumi.Output<T | string> => (v?.[key] !== undefined ? pulumi.output(v[key] as string) : output),
    );
}

/** The declared mode when the program gave one (a range on a "bridge" network is refused at preview), else the output. */
export function declaredMode(net: VirtualNetwork): pulumi.Output<string> {
  const args = declared.get(net);
  return args?.mode !== undefined ? pulumi.output(args.mode as pulumi.Input<string>) : net.mode;
}

/**
 * The `network` property of DhcpRange and StaticRoute: the network's name, mode, bridge, and subnet and own address
 * per family, which their checks need (provider/resources/networkRef.ts validates it). Each field is its own
 * output, so what is known at preview (the declared subnet) reaches the check even while the bridge is not.
 */
export function networkRef(net: VirtualNetwork) {
  return {
    name: net.name,
    mode: declaredMode(net),
    bridgeName: net.bridgeName,
    cidr: declaredOr(net, "ipv4", "cidr", net.cidr),
    gatewayIp: declaredOr(net, "ipv4", "gateway", net.gatewayIp),
    ipv6Cidr: declaredOr(net, "ipv6", "cidr", net.ipv6Cidr),
    ipv6Gateway: declaredOr(net, "ipv6", "gateway", net.ipv6Gateway),
  };
}
