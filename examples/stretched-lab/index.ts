// One network across several hosts: a NAT network on the first host of the list, with its DHCP range, DNS and
// NAT there, and its layer-2 segment stretched over VXLAN to every other host. Guests on any host's bridge
// get an address from the one range and reach each other and the internet through the first host. Config
// (namespace "stretched"):
//   hosts:      [{ "name": "h1", "address": "198.18.0.11", "hostKey": "ssh-ed25519 ...", "uplinkAddress": "198.19.0.11" }, ...]
//   privateKey: (secret) the SSH key for root on every host
//   cidr:       the network's subnet, default "10.60.0.0/24" (the range is .100 to .199)
import * as pulumi from "@pulumi/pulumi";
import * as virtnet from "pulumi-virtnet";

interface LabHostConfig {
  name: string;
  address: string;
  hostKey: string;
  /** The host's underlay address: VXLAN runs between these. */
  uplinkAddress: string;
}

const config = new pulumi.Config("stretched");
const [first, ...others] = config.requireObject<LabHostConfig[]>("hosts");
const privateKey = config.requireSecret("privateKey");
const cidr = config.get("cidr") ?? "10.60.0.0/24";
const prefix = cidr.replace(/\.0\/24$/, "");

const connectionOf = (h: LabHostConfig) => ({ host: h.address, hostKey: h.hostKey, privateKey });

const net = new virtnet.VirtualNetwork("lab", {
  connection: connectionOf(first),
  mode: "nat",
  ipv4: { cidr },
  domain: { name: "lab.test", localOnly: true },
});
new virtnet.DhcpRange("pool", { network: net, start: `${prefix}.100`, end: `${prefix}.199` });

const extensions = others.map(
  (h) =>
    new virtnet.NetworkExtension(`lab-${h.name}`, {
      network: net,
      connection: connectionOf(h),
      localAddress: h.uplinkAddress,
    }),
);

/** Where to attach guests on each host. */
export const bridges = pulumi
  .all([net.bridgeName, ...extensions.map((e) => e.bridgeName)])
  .apply(([home, ...rest]) =>
    Object.fromEntries([[first.name, home], ...others.map((h, i) => [h.name, rest[i]])]),
  );
export const vni = extensions.length ? extensions[0].effectiveVni : undefined;
export const mtu = extensions.length ? extensions[0].mtu : undefined;
