// Network boot (PXE) inputs of a network: TFTP from its gateway and the boot file DHCP offers, like libvirt's
// <tftp root> and <bootp file server>, validated.
import * as ipaddr from "ipaddr.js";
import { NetworkArgs, Unchecked } from "./inputs";
import { Problems } from "./validation";

export interface BootSpec {
  tftp?: { root: string };
  bootp?: { file: string; server?: string };
}

// Paths and file names go into dnsmasq's configuration as they are: no blank, comma or quote.
const ABSOLUTE_PATH = /^\/[A-Za-z0-9._+/-]*$/;
const BOOT_FILE = /^[A-Za-z0-9._+/-]{1,127}$/;

export function checkBoot(raw: Unchecked<NetworkArgs>, hasIpv4: boolean, problems: Problems): BootSpec {
  const boot: BootSpec = {};
  if (raw.tftp !== undefined) {
    const root = raw.tftp?.root;
    if (typeof root !== "string" || !ABSOLUTE_PATH.test(root) || root.split("/").includes(".."))
      problems.add("tftp.root", `"${root}" is not an absolute directory path (letters, digits, . _ + - /)`);
    else if (!hasIpv4) problems.add("tftp", "TFTP serves IPv4 guests: the network needs ipv4");
    else boot.tftp = { root: root.length > 1 ? root.replace(/\/+$/, "") : root };
  }
  if (raw.bootp !== undefined) {
    const { file, server } = raw.bootp ?? {};
    const before = problems.errors.length;
    if (typeof file !== "string" || !BOOT_FILE.test(file) || file.split("/").includes(".."))
      problems.add(
        "bootp.file",
        `"${file}" is not a boot file name (at most 127 of letters, digits, . _ + - /)`,
      );
    if (server !== undefined && (typeof server !== "string" || !ipaddr.IPv4.isValidFourPartDecimal(server)))
      problems.add("bootp.server", `"${server}" is not an IPv4 address`);
    if (!hasIpv4) problems.add("bootp", "a boot file is offered by DHCP for IPv4: the network needs ipv4");
    if (problems.errors.length === before)
      boot.bootp = server === undefined ? { file: file as string } : { file: file as string, server };
  }
  return boot;
}
