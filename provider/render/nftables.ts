// The nftables driver: turns a network's intent into one table that virtnet owns entirely.
import { NFT_FAMILY } from "../naming";
import { NetworkSpec } from "../network/spec";

const q = (ifname: string) => `"${ifname}"`; // names are validated to [a-zA-Z0-9_.-]

/** The full table for `nft -f`, or null when the mode wants no rules ("open"). */
export function renderNftables(spec: NetworkSpec): string | null {
  if (!spec.firewallTable) return null;
  const br = q(spec.bridge.name);
  const out = spec.forwardDevice ? ` oifname ${q(spec.forwardDevice)}` : "";
  const inn = spec.forwardDevice ? ` iifname ${q(spec.forwardDevice)}` : "";

  const input = [
    `iifname ${br} meta l4proto { tcp, udp } th dport 53 accept comment "DNS from guests"`,
    `iifname ${br} udp dport 67 accept comment "DHCP from guests"`,
  ];
  const output = [`oifname ${br} udp dport 68 accept comment "DHCP to guests"`];
  if (spec.ipv6) {
    input.push(`iifname ${br} udp dport 547 accept comment "DHCPv6 from guests"`);
    output.push(`oifname ${br} udp dport 546 accept comment "DHCPv6 to guests"`);
  }
  const forward = [`iifname ${br} oifname ${br} accept comment "guest to guest"`];
  // IPv4 follows the mode; IPv6 is routed in nat mode unless nat.ipv6 asks for masquerade, as in libvirt.
  const families: [string, string | undefined, boolean][] = [
    ["ip", spec.ipv4?.cidr, spec.mode === "nat"],
    ["ip6", spec.ipv6?.cidr, spec.mode === "nat" && spec.nat.ipv6 === true],
  ];
  for (const [family, subnet, masquerade] of families) {
    if (!subnet || (spec.mode !== "nat" && spec.mode !== "route")) continue;
    forward.push(`iifname ${br}${out} ${family} saddr ${subnet} accept comment "guests out"`);
    forward.push(
      masquerade
        ? `oifname ${br}${inn} ${family} daddr ${subnet} ct state established,related accept comment "replies in"`
        : `oifname ${br}${inn} ${family} daddr ${subnet} accept comment "routed in"`,
    );
  }
  forward.push(`iifname ${br} reject comment "nothing else from guests"`);
  forward.push(`oifname ${br} reject comment "nothing else to guests"`);

  const chains = [
    chain("input", "type filter hook input priority filter; policy accept;", input),
    chain("output", "type filter hook output priority filter; policy accept;", output),
    chain("forward", "type filter hook forward priority filter; policy accept;", forward),
  ];
  const nat = spec.mode === "nat" ? natRules(spec) : [];
  if (nat.length)
    chains.push(chain("postrouting", "type nat hook postrouting priority srcnat; policy accept;", nat));
  return `table ${NFT_FAMILY} ${spec.firewallTable} {\n${chains.join("\n")}}\n`;
}

function natRules(spec: NetworkSpec): string[] {
  const out = spec.forwardDevice ? ` oifname ${q(spec.forwardDevice)}` : "";
  const rules: string[] = [];
  if (spec.ipv4) {
    const subnet = spec.ipv4.cidr;
    const { start, end } = spec.nat.portRange;
    const range = spec.nat.addressRange;
    const to = range ? (range.start === range.end ? range.start : `${range.start}-${range.end}`) : "";
    const withPorts = range ? `snat ip to ${to}:${start}-${end}` : `masquerade to :${start}-${end}`;
    const withoutPorts = range ? `snat ip to ${to}` : "masquerade";
    const match = `ip saddr ${subnet} ip daddr != ${subnet}${out}`;
    rules.push(
      `ip saddr ${subnet} ip daddr 224.0.0.0/24 return comment "local multicast stays"`,
      `ip saddr ${subnet} ip daddr 255.255.255.255 return comment "broadcast stays"`,
      `meta l4proto { tcp, udp } ${match} ${withPorts}`,
      `${match} ${withoutPorts}`,
    );
  }
  if (spec.ipv6 && spec.nat.ipv6) {
    const subnet = spec.ipv6.cidr;
    rules.push(
      `ip6 saddr ${subnet} ip6 daddr ff00::/8 return comment "multicast stays"`,
      `ip6 saddr ${subnet} ip6 daddr != ${subnet}${out} masquerade`,
    );
  }
  return rules;
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
