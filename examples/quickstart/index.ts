// Quickstart: one NAT network with a DHCP range on one host. The host comes from stack config:
//   pulumi config set virtnet:host 192.0.2.10
//   pulumi config set virtnet:hostKey "ssh-ed25519 AAAA..."
//   pulumi config set --secret virtnet:privateKey < ~/.ssh/id_ed25519
import * as virtnet from "pulumi-virtnet";

const net = new virtnet.VirtualNetwork("quickstart", {
  mode: "nat",
  ipv4: { cidr: "10.50.1.0/24" },
  domain: { name: "lab.test", localOnly: true },
  dns: { hosts: [{ ip: "10.50.1.10", hostnames: ["db"] }] },
});

const pool = new virtnet.DhcpRange("pool", {
  network: net,
  start: "10.50.1.100",
  end: "10.50.1.199",
  leaseTime: "1h",
});

export const bridgeName = net.bridgeName;
export const gatewayIp = net.gatewayIp;
export const cidr = net.cidr;
export const firewallTable = net.firewallTable;
export const dhcpPoolSize = pool.size;
