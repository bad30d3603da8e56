import * as pulumi from "@pulumi/pulumi";
import type { VirtualNetwork } from "./virtualNetwork";

/** The `network` property of DhcpRange and StaticRoute: the network's name, mode, bridge, and subnet and own address
 * per family, which their checks need (provider/resources/networkRef.ts validates it). */
export function networkRef(net: VirtualNetwork) {
  return pulumi
    .all([net.name, net.mode, net.bridgeName, net.cidr, net.gatewayIp, net.ipv6Cidr, net.ipv6Gateway])
    .apply(([name, mode, bridgeName, cidr, gatewayIp, ipv6Cidr, ipv6Gateway]) => ({
      name,
      mode,
      bridgeName,
      cidr,
      gatewayIp,
      ipv6Cidr,
      ipv6Gateway,
    }));
}
