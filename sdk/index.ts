// Public SDK of pulumi-virtnet.
export { ConnectionInput } from "./connection";
export { DhcpRange, DhcpRangeArgs, DhcpReservationInput, getLeases, Lease } from "./dhcpRange";
export { NetworkMode, VirtualNetwork, VirtualNetworkArgs } from "./virtualNetwork";
export { StaticRoute, StaticRouteArgs } from "./staticRoute";
export { HostBridge, HostBridgeArgs } from "./hostBridge";
export { NetworkExtension, NetworkExtensionArgs } from "./networkExtension";
export { Fdb, FdbEntry, FdbPort, FdbPortVlan, getFdb, Port, PortArgs } from "./port";
export * from "./libvirt";
