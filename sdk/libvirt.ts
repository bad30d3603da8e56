// libvirt network XML import for Pulumi programs: a plain function, no resources.
import type { LibvirtImport } from "../provider/libvirt/import";

export type {
  LibvirtDhcpRangeArgs,
  LibvirtDhcpReservation,
  LibvirtImport,
  LibvirtNetworkArgs,
  LibvirtRouteArgs,
  LibvirtSrvRecord,
} from "../provider/libvirt/import";
export { LibvirtXmlError } from "../provider/libvirt/errors";

/**
 * Reads a libvirt network definition (`virsh net-dumpxml NAME`) into virtnet arguments:
 *
 *     const lv = virtnet.fromLibvirtXml(fs.readFileSync("default.xml", "utf8"));
 *     lv.warnings.forEach((w) => pulumi.log.warn(w));
 *     const net = new virtnet.VirtualNetwork(lv.network.name, { connection, ...lv.network });
 *     lv.ranges.forEach((r) => new virtnet.DhcpRange(`${lv.network.name}-${r.name}`, { network: net, ...r }));
 *     lv.routes.forEach((r, i) => new virtnet.StaticRoute(`${lv.network.name}-route${i + 1}`, { network: net, ...r }));
 *
 * `warnings` names every element and attribute virtnet does not support (and so did not import); `notes`
 * says what was read but needs nothing (the uuid, libvirt defaults made explicit). Malformed XML, a root
 * that is not <network>, unsupported forward modes (bridge, macvtap, hostdev) and values that virtnet's
 * validation refuses throw a LibvirtXmlError whose message names each offending element.
 */
export function fromLibvirtXml(xml: string): LibvirtImport {
  // Loaded on first use: programs that never import XML do not load the XML parser.
  const impl = require("../provider/libvirt/import") as typeof import("../provider/libvirt/import");
  return impl.fromLibvirtXml(xml);
}
