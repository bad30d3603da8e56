// libvirt network XML: import (fromLibvirtXml) and export (toLibvirtXml).
export * from "./export";
export * from "./import";
export { LibvirtXmlError } from "./errors";
