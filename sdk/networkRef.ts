import * as pulumi from "@pulumi/pulumi";
import type { VirtualNetwork, VirtualNetworkArgs } from "./virtualNetwork";

// The arguments each VirtualNetwork of this program was declared with: a range or route declared with
// `network: net` learns the subnet from them while the network's own outputs are not known yet (preview).
const declared = new WeakMap<VirtualNetwork, VirtualNetworkArgs>();

export function rememberNetworkArgs(net: VirtualNetwork, args: VirtualNetworkArgs | undefined): void {
  if (args) declared.set(net, args);
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

/**
 * The `network` property of DhcpRange and StaticRoute: the network's name, bridge, and subnet and own address
 * per family, which their checks need (provider/resources/networkRef.ts validates it). Each field is its own
 * output, so what is known at preview (the declared subnet) reaches the check even while the bridge is not.
 */
export function networkRef(net: VirtualNetwork) {
  return {
    name: net.name,
    bridgeName: net.bridgeName,
    cidr: declaredOr(net, "ipv4", "cidr", net.cidr),
    gatewayIp: declaredOr(net, "ipv4", "gateway", net.gatewayIp),
    ipv6Cidr: declaredOr(net, "ipv6", "cidr", net.ipv6Cidr),
    ipv6Gateway: declaredOr(net, "ipv6", "gateway", net.ipv6Gateway),
  };
}
