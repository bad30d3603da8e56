// End-to-end helpers for both firewall backends: what the kernel holds of a network's rules, in the form the
// network's `rendered` output shows, and other firewalls set up on a lab host as Docker and firewalld do.
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

export { DOCKER_SETUP } from "../support/docker";

/** Takes Docker's chains away again (the host had no iptables tables before: the tests check that). */
export const DOCKER_TEARDOWN = "nft delete table ip filter; nft delete table ip nat; :";

/**
 * firewalld 1.3's nftables table (Debian 12), reduced to the chains that decide: the default zone "public"
 * accepts ssh and replies; anything else in or forwarded is rejected at the end of filter_INPUT and
 * filter_FORWARD. Zone "trusted" accepts everything; "firewall-cmd --zone=trusted --add-interface=X" adds
 * the dispatch rules that trustedZone() adds.
 */
export const FIREWALLD_TABLE = `table inet firewalld {
	chain filter_INPUT {
		type filter hook input priority filter + 10; policy accept;
		ct state { established, related } accept
		ct status dnat accept
		iifname "lo" accept
		ct state invalid drop
		jump filter_INPUT_ZONES
		reject with icmpx admin-prohibited
	}
	chain filter_FORWARD {
		type filter hook forward priority filter + 10; policy accept;
		ct state { established, related } accept
		ct status dnat accept
		iifname "lo" accept
		ct state invalid drop
		ip6 daddr { ::/96, ::ffff:0.0.0.0/96, 2002::/24, 2002:a00::/24, 2002:7f00::/24, 2002:a9fe::/32, 2002:ac10::/28, 2002:c0a8::/32, 2002:e000::/19 } reject with icmpv6 addr-unreachable
		jump filter_FORWARD_IN_ZONES
		jump filter_FORWARD_OUT_ZONES
		ct state invalid drop
		reject with icmpx admin-prohibited
	}
	chain filter_OUTPUT {
		type filter hook output priority filter + 10; policy accept;
		ct state { established, related } accept
		oifname "lo" accept
	}
	chain filter_INPUT_ZONES {
		goto filter_IN_public
	}
	chain filter_FORWARD_IN_ZONES {
		goto filter_FWDI_public
	}
	chain filter_FORWARD_OUT_ZONES {
		goto filter_FWDO_public
	}
	chain filter_IN_public {
		meta l4proto { icmp, ipv6-icmp } accept
		tcp dport 22 ct state { new, untracked } accept
		ip6 daddr fe80::/64 udp dport 546 ct state { new, untracked } accept
	}
	chain filter_FWDI_public {
	}
	chain filter_FWDO_public {
	}
	chain filter_IN_trusted {
		accept
	}
	chain filter_FWDI_trusted {
		accept
	}
	chain filter_FWDO_trusted {
		accept
	}
}
`;

/** What `firewall-cmd --zone=trusted --add-interface=<bridge>` changes in firewalld's table. */
export function trustedZone(bridge: string): string {
  return [
    `nft insert rule inet firewalld filter_INPUT_ZONES iifname "${bridge}" goto filter_IN_trusted`,
    `nft insert rule inet firewalld filter_FORWARD_IN_ZONES iifname "${bridge}" goto filter_FWDI_trusted`,
    `nft insert rule inet firewalld filter_FORWARD_OUT_ZONES oifname "${bridge}" goto filter_FWDO_trusted`,
  ].join(" && ");
}
