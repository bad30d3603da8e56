// The iptables driver: turns a network's firewall intent into chains that virtnet owns ("VN-<hash>-IN",
// "-OUT", "-FWD", "-NAT") plus one jump to each from a built-in chain. Rules are written exactly as
// `iptables-save` prints them, so a listing read back from the host compares equal to the render, and the
// same lines are valid `iptables-restore` input. IPv4 goes to iptables, IPv6 to ip6tables.
import { quote } from "shell-quote";
import { iptablesChainPrefix, iptablesComment } from "../naming";
import { NetworkSpec } from "../model/network";
import {
  FirewallIntent,
  firewallIntent,
  ForwardRule,
  IpFamily,
  NatRule,
  ServiceRule,
} from "./firewallIntent";

export const IPT_TABLES = ["filter", "nat"] as const;
export type IptTable = (typeof IPT_TABLES)[number];
export const IPT_FAMILIES: IpFamily[] = ["ipv4", "ipv6"];

/** Built-in chains in the order iptables-save prints them. */
const BUILTIN_ORDER: Record<IptTable, string[]> = {
  filter: ["INPUT", "FORWARD", "OUTPUT"],
  nat: ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
};

/**
 * What virtnet has, or wants, in one table of one family: the chains it owns with their rules, and the rules
 * it puts in chains it does not own (jumps to its chains; accepts in Docker's DOCKER-USER). Every rule is a
 * whole "-A CHAIN ..." line as iptables-save prints it.
 */
export interface IptTableState {
  chains: Record<string, string[]>;
  foreign: string[];
}
export type IptFamilyState = Record<IptTable, IptTableState>;
export type IptState = Record<IpFamily, IptFamilyState>;

export function emptyTableState(): IptTableState {
  return { chains: {}, foreign: [] };
}
export function emptyFamilyState(): IptFamilyState {
  return { filter: emptyTableState(), nat: emptyTableState() };
}
export function emptyIptState(): IptState {
  return { ipv4: emptyFamilyState(), ipv6: emptyFamilyState() };
}

/** The command of each family, for `-save`, `-restore` and plain rule commands. */
export const IPT_COMMAND: Record<IpFamily, string> = { ipv4: "iptables", ipv6: "ip6tables" };

/** A word as iptables-save writes it: bare when only [A-Za-z0-9_-], otherwise double-quoted. */
export function saveWord(word: string): string {
  if (/^[A-Za-z0-9_-]+$/.test(word)) return word;
  return `"${word.replace(/["\\']/g, (c) => `\\${c}`)}"`;
}

/** Splits a saved rule line into its words (the inverse of saveWord). */
export function ruleWords(line: string): string[] {
  const words: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line))
    words.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2]);
  return words;
}

const host = (family: IpFamily, address: string) =>
  address.includes("/") ? address : `${address}/${family === "ipv4" ? 32 : 128}`;
const comment = (text: string) => `-m comment --comment ${saveWord(text)}`;

export interface IptChainNames {
  input: string;
  output: string;
  forward: string;
  nat: string;
}

export function iptablesChains(networkName: string): IptChainNames {
  const p = iptablesChainPrefix(networkName);
  return { input: `${p}-IN`, output: `${p}-OUT`, forward: `${p}-FWD`, nat: `${p}-NAT` };
}

/** The network's chains and jumps, per family, or an empty state when the mode wants no rules ("open"). */
export function renderIptablesState(spec: NetworkSpec): IptState {
  const intent = firewallIntent(spec);
  const state = emptyIptState();
  if (!intent) return state;
  const names = iptablesChains(spec.name);
  const jump = (builtin: string, chain: string) =>
    `-A ${builtin} ${comment(iptablesComment(spec.name))} -j ${chain}`;
  for (const family of IPT_FAMILIES) {
    const own: [IptTable, string, string, string[]][] = [
      ["filter", "INPUT", names.input, services(family, "-i", intent.bridge, intent.fromGuests)],
      ["filter", "FORWARD", names.forward, intent.forward.flatMap((r) => forwardRule(family, intent, r))],
      ["filter", "OUTPUT", names.output, services(family, "-o", intent.bridge, intent.toGuests)],
      ["nat", "POSTROUTING", names.nat, intent.nat.flatMap((r) => natRule(family, intent, r))],
    ];
    for (const [table, builtin, chain, rules] of own) {
      if (rules.length === 0) continue; // an empty chain would only cost a jump
      state[family][table].chains[chain] = rules.map((r) => `-A ${chain} ${r}`);
      state[family][table].foreign.push(jump(builtin, chain));
    }
  }
  return state;
}

function services(family: IpFamily, dir: "-i" | "-o", bridge: string, rules: ServiceRule[]): string[] {
  return rules
    .filter((s) => s.families.includes(family))
    .flatMap((s) =>
      s.protocols.map(
        (p) => `${dir} ${bridge} -p ${p} -m ${p} --dport ${s.port} ${comment(s.comment)} -j ACCEPT`,
      ),
    );
}

function forwardRule(family: IpFamily, intent: FirewallIntent, r: ForwardRule): string[] {
  const br = intent.bridge;
  const reject = `-j REJECT --reject-with ${family === "ipv4" ? "icmp-port-unreachable" : "icmp6-port-unreachable"}`;
  switch (r.kind) {
    case "guest-to-guest":
      return [`-i ${br} -o ${br} ${comment(r.comment)} -j ACCEPT`];
    case "guests-out": {
      if (r.family !== family) return [];
      const out = intent.uplink ? ` -o ${intent.uplink}` : "";
      return [`-s ${r.subnet} -i ${br}${out} ${comment(r.comment)} -j ACCEPT`];
    }
    case "into-guests": {
      if (r.family !== family) return [];
      const inn = intent.uplink ? `-i ${intent.uplink} ` : "";
      const ct = r.repliesOnly ? " -m conntrack --ctstate RELATED,ESTABLISHED" : "";
      return [`-d ${r.subnet} ${inn}-o ${br}${ct} ${comment(r.comment)} -j ACCEPT`];
    }
    case "reject-from-guests":
      return [`-i ${br} ${comment(r.comment)} ${reject}`];
    case "reject-to-guests":
      return [`-o ${br} ${comment(r.comment)} ${reject}`];
  }
}

function natRule(family: IpFamily, intent: FirewallIntent, r: NatRule): string[] {
  if (r.family !== family) return [];
  if (r.kind === "keep-source")
    return [`-s ${r.subnet} -d ${host(family, r.destination)} ${comment(r.comment)} -j RETURN`];
  const out = intent.uplink ? ` -o ${intent.uplink}` : "";
  const match = `-s ${r.subnet} ! -d ${r.subnet}${out}`;
  const a = r.addresses;
  const ports = r.ports ? portRange(r.ports) : "";
  const target = a
    ? `-j SNAT --to-source ${a.start === a.end ? a.start : `${a.start}-${a.end}`}${ports ? `:${ports}` : ""}`
    : `-j MASQUERADE${ports ? ` --to-ports ${ports}` : ""}`;
  if (!r.protocols) return [`${match} ${target}`];
  return r.protocols.map((p) => `${match} -p ${p} ${target}`);
}

function portRange(p: { start: number; end: number }): string {
  return p.start === p.end ? `${p.start}` : `${p.start}-${p.end}`;
}

// ---------------------------------------------------------------------------------------------------------
// Reading back

/** One family's iptables-save output (or the lines of it the probe keeps), per table. */
export interface IptListing {
  tables: Partial<Record<string, { policies: Record<string, string>; rules: string[] }>>;
}

/** Parses iptables-save text. Counters ("[12:345]") are dropped; comments ("# ...") ignored. */
export function parseIptablesSave(text: string): IptListing {
  const listing: IptListing = { tables: {} };
  let current: { policies: Record<string, string>; rules: string[] } | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/ \[\d+:\d+\]$/, "").trimEnd();
    if (line.startsWith("*")) {
      current = listing.tables[line.slice(1)] ??= { policies: {}, rules: [] };
    } else if (!current || line === "" || line.startsWith("#") || line === "COMMIT") {
      continue;
    } else if (line.startsWith(":")) {
      const [name, policy] = line.slice(1).split(" ");
      current.policies[name] = policy ?? "-";
    } else if (line.startsWith("-A ")) current.rules.push(line);
  }
  return listing;
}

const chainOf = (line: string) => line.split(" ")[1];
const targetOf = (line: string) => / -j (\S+)/.exec(line)?.[1];

/** The chains and jumps of the network whose chains start with `prefix`, as found in a listing. */
export function ownedState(listing: IptListing, prefix: string): IptFamilyState {
  const state = emptyFamilyState();
  for (const table of IPT_TABLES) {
    const t = listing.tables[table];
    if (!t) continue;
    const mine = (chain: string) => chain.startsWith(`${prefix}-`);
    for (const [name, policy] of Object.entries(t.policies))
      if (mine(name) && policy === "-") state[table].chains[name] = [];
    for (const rule of t.rules) {
      const chain = chainOf(rule);
      if (mine(chain)) (state[table].chains[chain] ??= []).push(rule);
      else if (mine(targetOf(rule) ?? "")) state[table].foreign.push(rule);
    }
  }
  return state;
}

/** The text `rendered.iptables` shows: one family's state as iptables-save would print it. */
export function iptablesSaveText(state: IptFamilyState): string {
  let text = "";
  for (const table of IPT_TABLES) {
    const t = state[table];
    const chains = Object.keys(t.chains).sort();
    if (chains.length === 0 && t.foreign.length === 0) continue;
    const order = (line: string) => {
      const i = BUILTIN_ORDER[table].indexOf(chainOf(line));
      return i < 0 ? BUILTIN_ORDER[table].length : i;
    };
    const foreign = [...t.foreign].sort((a, b) => order(a) - order(b) || (a < b ? -1 : a > b ? 1 : 0));
    text += `*${table}\n`;
    text += chains.map((c) => `:${c} - [0:0]\n`).join("");
    text += foreign.map((l) => `${l}\n`).join("");
    text += chains
      .flatMap((c) => t.chains[c])
      .map((l) => `${l}\n`)
      .join("");
    text += "COMMIT\n";
  }
  return text;
}

// ---------------------------------------------------------------------------------------------------------
// Changing the host

/**
 * The `iptables-restore --noflush` input (one transaction) that turns `from` into `to` in one table, or null
 * when they are equal. Declaring an owned chain (":C - [0:0]") creates or empties it; rules virtnet puts in
 * other chains are inserted at the top ("-I") only when missing, and deleted one by one ("-D"), so nothing
 * else in those chains moves. `dropBuiltins`: empty built-in chains to delete after (only iptables-nft can).
 */
export function tableTransition(
  table: IptTable,
  from: IptTableState,
  to: IptTableState,
  dropBuiltins: string[] = [],
): string | null {
  const lines: string[] = [];
  const rewrite = Object.keys(to.chains)
    .sort()
    .filter((c) => (from.chains[c] ?? []).join("\n") !== to.chains[c].join("\n") || !(c in from.chains));
  for (const c of rewrite) lines.push(`:${c} - [0:0]`);
  for (const c of rewrite) lines.push(...to.chains[c]);
  const have = counts(from.foreign);
  const want = counts(to.foreign);
  for (const line of from.foreign)
    if ((have.get(line) ?? 0) > (want.get(line) ?? 0)) {
      lines.push(line.replace(/^-A /, "-D "));
      have.set(line, have.get(line)! - 1);
    }
  for (const line of to.foreign)
    if ((have.get(line) ?? 0) < (want.get(line) ?? 0)) {
      lines.push(line.replace(/^-A /, "-I "));
      have.set(line, (have.get(line) ?? 0) + 1);
    }
  for (const c of Object.keys(from.chains).sort()) if (!(c in to.chains)) lines.push(`-F ${c}`, `-X ${c}`);
  for (const b of dropBuiltins) lines.push(`-X ${b}`);
  if (lines.length === 0) return null;
  return `*${table}\n${lines.join("\n")}\nCOMMIT\n`;
}

function counts(lines: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of lines) m.set(l, (m.get(l) ?? 0) + 1);
  return m;
}

/** A shell command that feeds `restoreInput` to the family's iptables-restore without flushing anything. */
export function restoreCommand(family: IpFamily, restoreInput: string): string {
  return `printf '%s' ${quote([restoreInput])} | ${IPT_COMMAND[family]}-restore -w --noflush`;
}

/**
 * Boot-time restore of one family: the owned chains in one transaction per table, then each rule in a chain
 * virtnet does not own, inserted only when missing (-C), so running it twice changes nothing.
 */
export function bootRestoreLines(family: IpFamily, state: IptFamilyState): string[] {
  const lines: string[] = [];
  for (const table of IPT_TABLES) {
    const t = state[table];
    const input = tableTransition(table, emptyTableState(), { chains: t.chains, foreign: [] });
    if (input) lines.push(restoreCommand(family, input));
    for (const rule of t.foreign) {
      const words = ruleWords(rule).slice(1); // drop "-A"
      const cmd = [IPT_COMMAND[family], "-w", "-t", table];
      lines.push(`${quote([...cmd, "-C", ...words])} 2>/dev/null || ${quote([...cmd, "-I", ...words])}`);
    }
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------------------
// Docker

/** Docker's chain for users' rules: consulted first in FORWARD, before Docker's policy DROP. */
export const DOCKER_USER = "DOCKER-USER";

/** Is Docker's DOCKER-USER chain in this family's filter table? */
export function hasDockerUser(listing: IptListing): boolean {
  return listing.tables.filter?.policies[DOCKER_USER] !== undefined;
}

/** The two accepts that let a bridge's traffic past Docker's FORWARD DROP, as iptables-save prints them. */
export function dockerUserAccepts(networkName: string, bridge: string): string[] {
  const c = comment(iptablesComment(networkName));
  return [`-A ${DOCKER_USER} -i ${bridge} ${c} -j ACCEPT`, `-A ${DOCKER_USER} -o ${bridge} ${c} -j ACCEPT`];
}

/** The network's accepts found in DOCKER-USER (whatever bridge they name). */
export function observedDockerUserAccepts(listing: IptListing, networkName: string): string[] {
  const c = comment(iptablesComment(networkName));
  return (listing.tables.filter?.rules ?? []).filter(
    (r) => r.startsWith(`-A ${DOCKER_USER} `) && r.includes(` ${c} `),
  );
}
