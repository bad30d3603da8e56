// The nftables driver: turns a network's firewall intent into its own chains in virtnet's one table
// ("inet virtnet", naming.ts). The text is what `nft list table` prints of those chains, so a listing that
// differs from it is drift.
import * as ipaddr from "ipaddr.js";
import { NFT_FAMILY, NFT_TABLE_REF, nftChainId, nftSegmentChain } from "../naming";
import { NetworkSpec } from "../model/network";
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

/** Every chain a network may have, in the order virtnet makes them. */
export const NFT_CHAIN_KINDS = ["input", "output", "forward", "postrouting"] as const;

export function nftChainNames(networkName: string): string[] {
  return NFT_CHAIN_KINDS.map((k) => `${nftChainId(networkName)}.${k}`);
}

/** The network's chains for `nft -f`, as `nft list table` prints them; null when the mode wants no rules. */
export function renderNftables(spec: NetworkSpec): string | null {
  const intent = firewallIntent(spec);
  if (!intent) return null;
  const id = nftChainId(spec.name);
  const chain = (kind: string, hook: string, rules: string[]) =>
    `\tchain ${id}.${kind} {\n\t\t${hook}\n${rules.map((r) => `\t\t${r}\n`).join("")}\t}\n`;
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
  return `table ${NFT_TABLE_REF} {\n${chains.join("\n")}}\n`;
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

/**
 * One atomic transaction that replaces the network's chains, whichever of them exist: each is made (if
 * missing) and deleted, then `ruleset` (renderNftables, or a listing to put back) adds what is wanted.
 */
export function nftReplaceScript(networkName: string, ruleset: string): string {
  return nftDeleteScript(networkName) + ruleset;
}

/** Removes the network's chains (a no-op transaction when it has none); the table stays for the others. */
export function nftDeleteScript(networkName: string): string {
  const t = NFT_TABLE_REF;
  const chains = nftChainNames(networkName);
  return [`add table ${t}`, ...chains.flatMap((c) => [`add chain ${t} ${c}`, `delete chain ${t} ${c}`])]
    .map((l) => l + "\n")
    .join("");
}

/** Replaces (or, with no ruleset, removes) a whole table: the per-network tables of earlier versions. */
export function nftTableScript(table: string, ruleset = ""): string {
  return `table ${NFT_FAMILY} ${table}\ndelete table ${NFT_FAMILY} ${table}\n${ruleset}`;
}

/**
 * The network's chains out of a listing of the whole shared table (`nft list table inet virtnet`), in the
 * form renderNftables prints; undefined when it has none.
 */
export function networkChainsOf(tableListing: string | undefined, networkName: string): string | undefined {
  if (!tableListing) return undefined;
  return chainsOf(tableListing, nftChainNames(networkName));
}

/** The named chains out of a listing of the shared table, as one table in `nft list` form. */
function chainsOf(tableListing: string | undefined, names: string[]): string | undefined {
  if (!tableListing) return undefined;
  const index = chainIndexOf(tableListing);
  const ours = names.flatMap((n) => index.get(n) ?? []).sort((a, b) => a.at - b.at);
  return ours.length ? `table ${NFT_TABLE_REF} {\n${ours.map((c) => c.text).join("\n")}}\n` : undefined;
}

// One probe's listing is read for each of its networks: its chains are found once (the last listing's kept).
let lastListing: { listing: string; index: Map<string, { at: number; text: string }> } | undefined;

/** Each chain of a listing by name: its text and its place in the listing. */
function chainIndexOf(listing: string): Map<string, { at: number; text: string }> {
  if (lastListing?.listing === listing) return lastListing.index;
  const index = new Map<string, { at: number; text: string }>();
  for (const m of listing.matchAll(/^\tchain (\S+) \{\n(?:\t\t.*\n)*\t\}$/gm))
    if (!index.has(m[1])) index.set(m[1], { at: m.index, text: m[0] + "\n" });
  lastListing = { listing, index };
  return index;
}

// ---------------------------------------------------------------------------------------------------------
// A stretched segment's filter on each member (NetworkExtension)

/**
 * VXLAN of the segment's VNI is accepted from the other members' underlay addresses only. The VNI is matched
 * in the VXLAN header (transport header bits 96-119): each segment on a host filters its own VNI, so a member
 * of one segment cannot send into another one. Null when the segment has no other member.
 */
export function renderSegmentFilter(
  networkName: string,
  vni: number,
  port: number,
  peers: string[],
): string | null {
  if (!peers.length) return null;
  const match = `udp dport ${port} @th,96,24 0x${vni.toString(16)}`;
  const rules: string[] = [];
  for (const [kind, ip] of [
    ["ipv4", "ip"],
    ["ipv6", "ip6"],
  ] as const) {
    // nft lists a set's addresses in ascending order, IPv6 ones in RFC 5952 form; one address without braces.
    const addrs = peers
      .map((p) => ipaddr.parse(p))
      .filter((a) => a.kind() === kind)
      .sort((a, b) => compareBytes(a.toByteArray(), b.toByteArray()))
      .map((a) => (a.kind() === "ipv6" ? (a as ipaddr.IPv6).toRFC5952String() : a.toString()));
    if (addrs.length)
      rules.push(`${match} ${ip} saddr ${addrs.length > 1 ? `{ ${addrs.join(", ")} }` : addrs[0]} accept`);
  }
  rules.push(`${match} drop`);
  const chain = nftSegmentChain(networkName);
  const hook = "type filter hook input priority filter; policy accept;";
  return `table ${NFT_TABLE_REF} {\n\tchain ${chain} {\n\t\t${hook}\n${rules.map((r) => `\t\t${r}\n`).join("")}\t}\n}\n`;
}

function compareBytes(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/** One transaction that replaces (or, with no ruleset, removes) the segment's filter chain. */
export function nftSegmentScript(networkName: string, ruleset: string | null): string {
  const t = NFT_TABLE_REF;
  const c = nftSegmentChain(networkName);
  return `add table ${t}\nadd chain ${t} ${c}\ndelete chain ${t} ${c}\n${ruleset ?? ""}`;
}

/** The segment's filter chain out of a listing of the shared table; undefined when it has none. */
export function segmentFilterOf(tableListing: string | undefined, networkName: string): string | undefined {
  return chainsOf(tableListing, [nftSegmentChain(networkName)]);
}
