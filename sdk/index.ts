// Public SDK of pulumi-virtnet.
export { ConnectionInput } from "./connection";
export { NetworkMode, VirtualNetwork, VirtualNetworkArgs } from "./virtualNetwork";
