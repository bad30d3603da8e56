// From libvirt: creates with virtnet the network that a libvirt network XML file defines (its DHCP ranges and
// reservations, DNS records and routes too), and says what of the file virtnet does not do. Get the file
// from the libvirt host with `virsh net-dumpxml default > default.xml`. The virtnet host comes from stack
// config, as in the quickstart:
//   pulumi config set virtnet:host 192.0.2.10
//   pulumi config set virtnet:hostKey "ssh-ed25519 AAAA..."
//   pulumi config set --secret virtnet:privateKey < ~/.ssh/id_ed25519
//   pulumi config set fromLibvirt:xmlFile ./other-network.xml   # optional; default: default.xml beside this file
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as virtnet from "pulumi-virtnet";

const config = new pulumi.Config("fromLibvirt");
const file = config.get("xmlFile") ?? path.join(__dirname, "default.xml");
const lv = virtnet.fromLibvirtXml(fs.readFileSync(file, "utf8"));
for (const w of lv.warnings) pulumi.log.warn(`${path.basename(file)}: ${w}`);
for (const n of lv.notes) pulumi.log.info(`${path.basename(file)}: ${n}`);

const name = lv.network.name;
const net = new virtnet.VirtualNetwork(name, lv.network);
const ranges = lv.ranges.map((r) => new virtnet.DhcpRange(`${name}-${r.name}`, { network: net, ...r }));
lv.routes.forEach(
  (r, i) =>
    new virtnet.StaticRoute(`${name}-route${i + 1}`, { network: net, name: `${name}-route${i + 1}`, ...r }),
);

export const bridgeName = net.bridgeName;
export const gatewayIp = net.gatewayIp;
export const cidr = net.cidr;
export const dhcpRanges = ranges.map((r) => pulumi.interpolate`${r.start}-${r.end}`);
export const warnings = lv.warnings;
