// A network's own firewall on a host: which backend carries it (nftables or iptables), and the actions that
// make that backend's rules match the render, with their undo. The drivers own the syntax
// (render/nftables.ts, render/iptables.ts); this module only compares what the host has with what is wanted.
import { IPTABLES_SCAFFOLD, iptablesChainPrefix, NFT_FAMILY, NFT_TABLE, NFT_TABLE_REF } from "../naming";
import { modeHasNoFirewall } from "../model/modes";
import { IpFamily } from "../render/firewallIntent";
import {
  emptyFamilyState,
  IPT_COMMAND,
  IPT_FAMILIES,
  IPT_TABLES,
  IptFamilyState,
  IptTable,
  IptTableState,
  ownedState,
  renderIptablesState,
  tableTransition,
} from "../render/iptables";
import {
  nftChainNames,
  nftDeleteScript,
  nftReplaceScript,
  nftTableScript,
  renderNftables,
} from "../render/nftables";
import { firewallOf, ObservedFirewall, ObservedNetwork, recordOf } from "../observe/observed";
import { Action } from "../ops/action";
import * as ops from "../ops/ops";
import { FirewallBackend, NetworkSpec } from "../model/network";

const IPTABLES_TOOLS = ["iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save"];
const NFT_FAMILY_OF: Record<IpFamily, string> = { ipv4: "ip", ipv6: "ip6" };

/**
 * The backend that carries the network's rules on this host. An explicit choice is checked against the
 * host's tools; "auto" keeps what the network was applied with, and otherwise prefers nftables.
 */
export function chooseFirewallBackend(
  spec: NetworkSpec,
  observed: ObservedNetwork,
): { backend: FirewallBackend; error?: string } {
  const tools = firewallOf(observed).tools;
  const missing = (needed: string[]) => needed.filter((t) => !tools.includes(t));
  const check = (backend: FirewallBackend) => {
    if (modeHasNoFirewall(spec.mode)) return { backend }; // no rules: nothing to run
    const lacking = missing(backend === "nftables" ? ["nft"] : IPTABLES_TOOLS);
    if (lacking.length === 0) return { backend };
    const what = lacking.map((t) => `"${t}"`).join(", ");
    const pkg = backend === "nftables" ? "nftables" : "iptables";
    return {
      backend,
      error: `firewallBackend "${spec.firewallBackend ?? "auto"}" uses ${backend}, but command ${what} is not installed (install Debian's ${pkg})`,
    };
  };
  if (spec.firewallBackend) return check(spec.firewallBackend);
  const record = recordOf(observed, spec.name);
  if (record) return check(record.firewallBackend ?? "nftables");
  if (tools.includes("nft") || missing(IPTABLES_TOOLS).length > 0) return check("nftables");
  return check("iptables");
}

/** What the network has in each backend's world on this host. */
interface Have {
  nftListing?: string;
  legacyTable?: { name: string; listing: string };
  iptables: Record<IpFamily, IptFamilyState>;
}

function have(observed: ObservedNetwork, name: string): Have {
  const fw = firewallOf(observed);
  const prefix = iptablesChainPrefix(name);
  return {
    nftListing: observed.nftListing,
    legacyTable: observed.legacyNftTable,
    iptables: { ipv4: ownedState(fw.iptables.ipv4, prefix), ipv6: ownedState(fw.iptables.ipv6, prefix) },
  };
}

/** The actions that put the network's own rules in `backend` and take them out of the other one. */
export function ownFirewallActions(
  spec: NetworkSpec,
  observed: ObservedNetwork,
  backend: FirewallBackend,
): Action[] {
  const h = have(observed, spec.name);
  const wantNft = backend === "nftables" ? renderNftables(spec) : null;
  const wantIpt =
    backend === "iptables"
      ? renderIptablesState(spec)
      : { ipv4: emptyFamilyState(), ipv6: emptyFamilyState() };
  const nft = nftActions(spec.name, wantNft, h, observed);
  const ipt = iptablesActions(observed, h.iptables, wantIpt, true);
  // The new backend's rules go in before the old one's come out: no moment without a firewall.
  return backend === "nftables" ? [...nft, ...ipt] : [...ipt, ...nft];
}

/** Removes every rule of the network from both backends (delete: no undo). */
export function removeOwnFirewallActions(name: string, observed: ObservedNetwork): Action[] {
  const h = have(observed, name);
  const none = { ipv4: emptyFamilyState(), ipv6: emptyFamilyState() };
  return [...nftActions(name, null, h, observed), ...iptablesActions(observed, h.iptables, none, false)].map(
    ({ undo: _undo, ...a }) => a,
  );
}

/** The shared table itself: made by the first network that needs it, so that a rollback can remove it. */
function nftTableActions(want: string | null, observed: ObservedNetwork): Action[] {
  if (!want || firewallOf(observed).virtnetTable) return [];
  return [ops.nftAddTable(NFT_FAMILY, NFT_TABLE)];
}

/**
 * The network's chains, replaced in one transaction. A table of its own from an earlier virtnet goes in the
 * same transaction, so there is no moment without a firewall; the undo puts both back.
 */
function nftActions(network: string, want: string | null, h: Have, observed: ObservedNetwork): Action[] {
  const legacy = h.legacyTable;
  const changed = want !== (h.nftListing ?? null) || legacy !== undefined;
  if (!changed) return [];
  // The shared table is touched only when the network has or wants chains there: removing just an old table
  // must not leave an empty "inet virtnet" behind.
  const chains = (listing: string | null | undefined) =>
    listing ? nftReplaceScript(network, listing) : want || h.nftListing ? nftDeleteScript(network) : "";
  // Chains the probe saw none of need no clearing first (under the generation token the host is as probed):
  // the make-and-delete pairs took about half of a round's `nft -f` for 20 new networks.
  const wanted = want && !h.nftListing ? want : chains(want);
  const script = wanted + (legacy ? nftTableScript(legacy.name) : "");
  const putBack = chains(h.nftListing) + (legacy ? nftTableScript(legacy.name, legacy.listing) : "");
  return [
    ...nftTableActions(want, observed),
    ops.nftApply(want ? "apply firewall" : "remove firewall", script, putBack),
  ];
}

/** The nft chains a network's rules are in, as the `firewall` output names them. */
export function nftChainsOf(spec: NetworkSpec): string[] {
  const listing = renderNftables(spec);
  return listing ? nftChainNames(spec.name).filter((c) => listing.includes(`\tchain ${c} {`)) : [];
}

/**
 * One action per family and table that changes, each one iptables-restore transaction. iptables-nft makes
 * a table and the built-in chains a jump needs when they are missing; virtnet records those it made in
 * IPTABLES_SCAFFOLD and deletes them again once they are empty, so a host is left as it was found.
 */
function iptablesActions(
  observed: ObservedNetwork,
  from: Record<IpFamily, IptFamilyState>,
  to: Record<IpFamily, IptFamilyState>,
  recordFirst: boolean,
): Action[] {
  const fw = firewallOf(observed);
  const tracked = fw.iptablesNft && fw.tools.includes("nft");
  const entries = new Set(fw.scaffold.map((s) => s.entry));
  const before = [...entries].sort().join("\n");
  const actions: Action[] = [];
  for (const family of IPT_FAMILIES)
    for (const table of IPT_TABLES) {
      const a = from[family][table];
      const b = to[family][table];
      const scaffold = tracked ? scaffoldChange(fw, family, table, a, b) : undefined;
      const run = tableTransition(table, a, b, scaffold?.dropChains);
      if (!run && !scaffold?.dropChains.length && !scaffold?.dropTable) continue;
      const undo = tableTransition(table, b, a, scaffold?.createdChains);
      const nftTable = `${NFT_FAMILY_OF[family]} ${table}`;
      const empty = Object.keys(b.chains).length === 0 && b.foreign.length === 0;
      actions.push(
        ops.iptablesRestore(
          `${empty ? "remove" : "apply"} firewall: ${IPT_COMMAND[family]} ${table}`,
          family,
          { input: run, dropTable: scaffold?.dropTable ? nftTable : undefined },
          { input: undo, dropTable: scaffold?.createdTable ? nftTable : undefined },
        ),
      );
      for (const e of scaffold?.forget ?? []) entries.delete(e);
      for (const e of scaffold?.remember ?? []) entries.add(e);
    }
  const after = [...entries].sort().join("\n");
  if (after !== before) {
    const prev = before ? `${before}\n` : undefined;
    const record = after
      ? ops.writeFile(IPTABLES_SCAFFOLD, `${after}\n`, prev)
      : ops.removeFile(IPTABLES_SCAFFOLD, prev!);
    // When applying, recorded before anything is made; when deleting, forgotten once it is gone.
    if (recordFirst) actions.unshift(record);
    else actions.push(record);
  }
  return actions;
}

interface ScaffoldChange {
  /** Built-in chains (and the table) this transition makes; its undo deletes them. */
  createdChains: string[];
  createdTable: boolean;
  /** Built-in chains (and the table) virtnet made that are empty once this transition is done. */
  dropChains: string[];
  dropTable: boolean;
  remember: string[];
  forget: string[];
}

function scaffoldChange(
  fw: ObservedFirewall,
  family: IpFamily,
  table: IptTable,
  from: IptTableState,
  to: IptTableState,
): ScaffoldChange {
  const nftTable = `${NFT_FAMILY_OF[family]} ${table}`;
  const chainsNow = fw.nftChains.filter((c) => c.startsWith(`${nftTable} `)).map((c) => c.split(" ")[2]);
  const builtinsOf = (s: IptTableState) => [...new Set(s.foreign.map((l) => l.split(" ")[1]))];
  const change: ScaffoldChange = {
    createdChains: [],
    createdTable: false,
    dropChains: [],
    dropTable: false,
    remember: [],
    forget: [],
  };
  const wantsAnything = Object.keys(to.chains).length > 0 || to.foreign.length > 0;
  if (wantsAnything && !fw.nftTables.includes(nftTable)) {
    change.createdTable = true;
    change.remember.push(nftTable);
  }
  for (const b of builtinsOf(to))
    if (!chainsNow.includes(b)) {
      change.createdChains.push(b);
      change.remember.push(`${nftTable} ${b}`);
    }
  // Built-in chains virtnet made: gone once nothing is left in them (other networks' jumps keep them).
  const removed = new Set(from.foreign.filter((l) => !to.foreign.includes(l)));
  for (const s of fw.scaffold) {
    const [fam, tbl, chain] = s.entry.split(" ");
    if (`${fam} ${tbl}` !== nftTable || !chain) continue;
    if (!chainsNow.includes(chain)) {
      change.forget.push(s.entry); // already gone
      continue;
    }
    const rest = s.rules.filter((r) => r.startsWith("-A ") && !removed.has(r));
    const added = to.foreign.filter((l) => l.split(" ")[1] === chain && !from.foreign.includes(l));
    if (rest.length === 0 && added.length === 0 && s.rules.includes(`-P ${chain} ACCEPT`)) {
      change.dropChains.push(chain);
      change.forget.push(s.entry);
    } else if (![...rest, ...added].some((r) => / -j VN-/.test(r))) change.forget.push(s.entry); // someone else's now
  }
  if (fw.scaffold.some((s) => s.entry === nftTable)) {
    const left = chainsNow.filter(
      (c) => !change.dropChains.includes(c) && !(c in from.chains && !(c in to.chains)),
    );
    if (left.length === 0 && !wantsAnything) {
      change.dropTable = true;
      change.forget.push(nftTable);
    } else if (!left.some((c) => c.startsWith("VN-")) && !wantsAnything && left.length > 0)
      change.forget.push(nftTable);
  }
  return change;
}

/** What virtnet puts in the network's own firewall, as the `firewall` output shows it. */
export function firewallSummary(spec: NetworkSpec, observed: ObservedNetwork): Record<string, unknown> {
  const { backend } = chooseFirewallBackend(spec, observed);
  const out: Record<string, unknown> = { backend };
  if (modeHasNoFirewall(spec.mode)) return out;
  if (backend === "nftables") {
    out.table = NFT_TABLE_REF;
    out.chains = nftChainsOf(spec);
  }
  if (backend === "iptables") {
    const state = renderIptablesState(spec);
    out.chains = [
      ...new Set(IPT_FAMILIES.flatMap((f) => IPT_TABLES.flatMap((t) => Object.keys(state[f][t].chains)))),
    ].sort();
  }
  return out;
}
