// A lab across hosts: on each host a routed network with its own subnet and a DHCP range, and on every host a
// static route to every other host's network via that host's uplink address. Guests reach each other with
// their own addresses (no NAT). Config (namespace "multihost"):
//   hosts:        [{ "name": "h1", "address": "198.18.0.11", "hostKey": "ssh-ed25519 ...", "uplinkAddress": "198.19.0.11" }, ...]
//   privateKey:   (secret) the SSH key for root on every host
//   subnetPrefix: first two octets of the networks, default "10.210" (host i gets <prefix>.<i>.0/24)
import * as pulumi from "@pulumi/pulumi";
import * as virtnet from "pulumi-virtnet";

interface LabHostConfig {
  name: string;
  address: string;
  hostKey: string;
  uplinkAddress: string;
}

const config = new pulumi.Config("multihost");
const hosts = config.requireObject<LabHostConfig[]>("hosts");
const privateKey = config.requireSecret("privateKey");
const prefix = config.get("subnetPrefix") ?? "10.210";

const subnetOf = (i: number) => `${prefix}.${i + 1}.0/24`;
const connectionOf = (h: LabHostConfig) => ({ host: h.address, hostKey: h.hostKey, privateKey });

const networks = hosts.map((h, i) => {
  const net = new virtnet.VirtualNetwork(`net-${h.name}`, {
    connection: connectionOf(h),
    name: "lab",
    mode: "route",
    ipv4: { cidr: subnetOf(i) },
  });
  new virtnet.DhcpRange(`pool-${h.name}`, {
    network: net,
    name: "pool",
    start: `${prefix}.${i + 1}.100`,
    end: `${prefix}.${i + 1}.199`,
  });
  return net;
});

hosts.forEach((from, i) =>
  hosts.forEach((to, j) => {
    if (i === j) return;
    new virtnet.StaticRoute(
      `route-${from.name}-to-${to.name}`,
      {
        connection: connectionOf(from),
        name: `to-${to.name}`,
        destination: subnetOf(j),
        gateway: to.uplinkAddress,
      },
      { dependsOn: [networks[i]] },
    );
  }),
);

export const subnets = Object.fromEntries(hosts.map((h, i) => [h.name, subnetOf(i)]));
export const bridges = Object.fromEntries(hosts.map((h, i) => [h.name, networks[i].bridgeName]));
