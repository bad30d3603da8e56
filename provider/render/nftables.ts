// The nftables driver: turns a network's firewall intent into one table that virtnet owns entirely. The text
// is what `nft list table` prints back, so a listing that differs from it is drift.
import { NFT_FAMILY } from "../naming";
import { NetworkSpec } from "../network/spec";
import {
  FirewallIntent,
  firewallIntent,
  ForwardRule,
  IpFamily,
  NatRule,
  ServiceRule,
} from "./firewallIntent";

const q = (ifname: string) => `"${ifname}"`; // names are validated to [a-zA-Z0-9_.-]
const NFT_IP: Record<IpFamily, string> = { ipv4: "ip", ipv6: "ip6" };

/** The full table for `nft -f`, or null when the mode wants no rules ("open"). */
export function renderNftables(spec: NetworkSpec): string | null {
  const intent = firewallIntent(spec);
  if (!intent || !spec.firewallTable) return null;
  const chains = [
    chain(
      "input",
      "type filter hook input priority filter; policy accept;",
      intent.fromGuests.map((s) => service("iifname", intent.bridge, s)),
    ),
    chain(
      "output",
      "type filter hook output priority filter; policy accept;",
      intent.toGuests.map((s) => service("oifname", intent.bridge, s)),
    ),
    chain(
      "forward",
      "type filter hook forward priority filter; policy accept;",
      intent.forward.map((r) => forwardRule(intent, r)),
    ),
  ];
  if (intent.nat.length)
    chains.push(
      chain(
        "postrouting",
        "type nat hook postrouting priority srcnat; policy accept;",
        intent.nat.map((r) => natRule(intent, r)),
      ),
    );
  return `table ${NFT_FAMILY} ${spec.firewallTable} {\n${chains.join("\n")}}\n`;
}

// The table is inet: a service rule covers both families, so it carries no family match.
function service(direction: "iifname" | "oifname", bridge: string, s: ServiceRule): string {
  const proto = s.protocols.length > 1 ? `meta l4proto { ${s.protocols.join(", ")} } th` : s.protocols[0];
  return `${direction} ${q(bridge)} ${proto} dport ${s.port} accept comment "${s.comment}"`;
}

function forwardRule(intent: FirewallIntent, r: ForwardRule): string {
  const br = q(intent.bridge);
  const out = intent.uplink ? ` oifname ${q(intent.uplink)}` : "";
  const inn = intent.uplink ? ` iifname ${q(intent.uplink)}` : "";
  switch (r.kind) {
    case "guest-to-guest":
      return `iifname ${br} oifname ${br} accept comment "${r.comment}"`;
    case "guests-out":
      return `iifname ${br}${out} ${NFT_IP[r.family]} saddr ${r.subnet} accept comment "${r.comment}"`;
    case "into-guests": {
      const ct = r.repliesOnly ? " ct state established,related" : "";
      return `oifname ${br}${inn} ${NFT_IP[r.family]} daddr ${r.subnet}${ct} accept comment "${r.comment}"`;
    }
    case "reject-from-guests":
      return `iifname ${br} reject comment "${r.comment}"`;
    case "reject-to-guests":
      return `oifname ${br} reject comment "${r.comment}"`;
  }
}

function natRule(intent: FirewallIntent, r: NatRule): string {
  const ip = NFT_IP[r.family];
  if (r.kind === "keep-source")
    return `${ip} saddr ${r.subnet} ${ip} daddr ${r.destination} return comment "${r.comment}"`;
  const out = intent.uplink ? ` oifname ${q(intent.uplink)}` : "";
  const match = `${ip} saddr ${r.subnet} ${ip} daddr != ${r.subnet}${out}`;
  const a = r.addresses;
  const to = a ? (a.start === a.end ? a.start : `${a.start}-${a.end}`) : "";
  const ports = r.ports ? `${r.ports.start}-${r.ports.end}` : "";
  const action = a
    ? `snat ${ip} to ${to}${ports ? `:${ports}` : ""}`
    : `masquerade${ports ? ` to :${ports}` : ""}`;
  const proto = r.protocols ? `meta l4proto { ${r.protocols.join(", ")} } ` : "";
  return `${proto}${match} ${action}`;
}

function chain(name: string, hook: string, rules: string[]): string {
  return `\tchain ${name} {\n\t\t${hook}\n${rules.map((r) => `\t\t${r}\n`).join("")}\t}\n`;
}

/** One atomic transaction that replaces the table whether or not it exists. */
export function nftReplaceScript(table: string, ruleset: string): string {
  return `table ${NFT_FAMILY} ${table}\ndelete table ${NFT_FAMILY} ${table}\n${ruleset}`;
}

/** Removes the table if it exists (a no-op transaction otherwise). */
export function nftDeleteScript(table: string): string {
  return `table ${NFT_FAMILY} ${table}\ndelete table ${NFT_FAMILY} ${table}\n`;
}
