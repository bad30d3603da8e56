// End-to-end helpers for both firewall backends: what the kernel holds of a network's rules, in the form the
// network's `rendered` output shows.
import {
  IPT_FAMILIES,
  iptablesSaveText,
  ownedState,
  parseIptablesSave,
} from "../../provider/render/iptables";
import { nftChainsOf, sh } from "./support";

/** The backends every connectivity test runs on: "auto" (nftables wherever nft is installed) and iptables. */
export const BACKENDS = [
  { label: "auto (nftables)", firewallBackend: undefined, expected: "nftables" },
  { label: "iptables", firewallBackend: "iptables", expected: "iptables" },
] as const;

/**
 * The network's rules as the kernel lists them back, keyed like `rendered` (nftables, or iptables and
 * ip6tables), so a test can compare the two objects whole.
 */
export async function kernelRules(
  host: string,
  outputs: Record<string, any>,
): Promise<Record<string, string>> {
  const fw = outputs.firewall as { backend: string; table?: string; chains?: string[] };
  if (fw.backend === "nftables") return fw.table ? { nftables: await nftChainsOf(host, outputs.name) } : {};
  const prefix = (fw.chains ?? [])[0]?.replace(/-[A-Z]+$/, "");
  const out: Record<string, string> = {};
  if (!prefix) return out;
  for (const family of IPT_FAMILIES) {
    const save = await sh(host, family === "ipv4" ? "iptables-save" : "ip6tables-save");
    const text = iptablesSaveText(ownedState(parseIptablesSave(save), prefix));
    if (text) out[family === "ipv4" ? "iptables" : "ip6tables"] = text;
  }
  return out;
}

/** `rendered` without the dnsmasq files: the firewall part only. */
export function renderedRules(outputs: Record<string, any>): Record<string, string> {
  const r = outputs.rendered ?? {};
  return Object.fromEntries(
    Object.entries(r as Record<string, string>).filter(([k]) =>
      ["nftables", "iptables", "ip6tables"].includes(k),
    ),
  );
}
