// Firewalls that are not virtnet's. Docker sets FORWARD's policy to DROP: virtnet answers with two accepts
// for the bridge in Docker's DOCKER-USER chain, removed with the network. firewalld rejects what its zones do
// not allow: virtnet puts the bridge in the zone `bridge.zone` names, or says at create what blocks the
// network and how to fix it. Any other forward chain with policy drop gets a warning.
import { modeForwards } from "../model/modes";
import { IpFamily } from "../render/firewallIntent";
import {
  dockerUserAccepts,
  hasDockerUser,
  IPT_COMMAND,
  IPT_FAMILIES,
  observedDockerUserAccepts,
  tableTransition,
} from "../render/iptables";
import { firewallOf, ObservedNetwork, recordOf } from "../observe/observed";
import { Action } from "../ops/action";
import * as ops from "../ops/ops";
import { NetworkSpec } from "../model/network";

const FIREWALLD_TABLE = "inet firewalld";

/** The families in which the network gets accepts in DOCKER-USER. */
export function dockerUserFamilies(spec: NetworkSpec, observed: ObservedNetwork): IpFamily[] {
  if (!modeForwards(spec.mode)) return [];
  const fw = firewallOf(observed);
  return IPT_FAMILIES.filter((f) => hasDockerUser(fw.iptables[f]));
}

export interface ForeignPlan {
  errors: string[];
  warnings: string[];
  actions: Action[];
}

export function planForeignFirewalls(spec: NetworkSpec, observed: ObservedNetwork): ForeignPlan {
  const fw = firewallOf(observed);
  const br = spec.bridge.name;
  const errors: string[] = [];
  const warnings: string[] = [];
  const actions: Action[] = [];

  const docker = dockerUserFamilies(spec, observed);
  for (const family of IPT_FAMILIES) {
    const have = observedDockerUserAccepts(fw.iptables[family], spec.name);
    const want = docker.includes(family) ? dockerUserAccepts(spec.name, br) : [];
    actions.push(...dockerActions(family, have, want));
  }

  if (modeForwards(spec.mode)) {
    const handled = (chain: string) =>
      (chain === "ip filter FORWARD" && docker.includes("ipv4")) ||
      (chain === "ip6 filter FORWARD" && docker.includes("ipv6"));
    const dropping = observed.forwardChainsWithDrop.filter((c) => !handled(c));
    // iptables-legacy's chains are invisible to nft: read FORWARD's policy from iptables-save instead.
    const legacyFilter = fw.iptablesNft ? undefined : fw.iptables.ipv4.tables.filter;
    if (legacyFilter?.policies.FORWARD === "DROP" && !docker.includes("ipv4"))
      dropping.push("iptables filter FORWARD");
    for (const c of dropping)
      warnings.push(
        `the forward chain "${c}" has policy drop: it drops this network's forwarded traffic ` +
          `unless it accepts bridge ${br} (for Docker: iptables -I DOCKER-USER -i ${br} -j ACCEPT; ` +
          `iptables -I DOCKER-USER -o ${br} -j ACCEPT)`,
      );
  }

  const zone = spec.bridge.zone;
  if (fw.nftTables.includes(FIREWALLD_TABLE) && !zone)
    warnings.push(
      `firewalld is active on this host (nft table "${FIREWALLD_TABLE}"): it rejects this network's forwarded ` +
        `traffic and its guests' DNS and DHCP unless bridge ${br} is in a zone that accepts them. Set ` +
        `bridge.zone, e.g. "trusted" (libvirt puts its bridges in its own zone "libvirt"), or run: ` +
        `firewall-cmd --zone=trusted --add-interface=${br} (with --permanent as well to keep it across reloads)`,
    );
  const previous = (recordOf(observed, spec.name)?.spec as NetworkSpec | undefined)?.bridge?.zone;
  if (zone && !fw.tools.includes("firewall-cmd"))
    errors.push(
      `bridge.zone "${zone}" needs firewalld, but command "firewall-cmd" is not installed on this host: ` +
        `install and start firewalld, or leave bridge.zone unset`,
    );
  else if (zone && fw.zone && !fw.zone.running)
    errors.push(
      `bridge.zone "${zone}" needs firewalld, which is not running on this host (firewall-cmd --state): ` +
        `start it, or leave bridge.zone unset`,
    );
  else if (fw.zone?.running) actions.push(...zoneActions(br, zone, previous, fw.zone.zone));
  return { errors, warnings, actions };
}

function dockerActions(family: IpFamily, have: string[], want: string[]): Action[] {
  const run = tableTransition("filter", { chains: {}, foreign: have }, { chains: {}, foreign: want });
  if (!run) return [];
  const undo = tableTransition("filter", { chains: {}, foreign: want }, { chains: {}, foreign: have });
  const where = `${IPT_COMMAND[family]} DOCKER-USER`;
  const name = want.length ? `accept bridge in ${where}` : `remove accepts from ${where}`;
  return [ops.iptablesRestore(name, family, { input: run }, undo ? { input: undo } : undefined)];
}

function zoneActions(bridge: string, want?: string, previous?: string, have?: string): Action[] {
  if (want && have !== want)
    return [
      ops.firewalldZone(
        `put bridge in firewalld zone ${want}`,
        bridge,
        { op: have ? "change" : "add", zone: want },
        have ? { op: "change", zone: have } : { op: "remove", zone: want },
      ),
    ];
  if (!want && previous && have === previous)
    return [
      ops.firewalldZone(
        `take bridge out of firewalld zone ${previous}`,
        bridge,
        { op: "remove", zone: previous },
        { op: "add", zone: previous },
      ),
    ];
  return [];
}

/** Delete: the network's accepts in DOCKER-USER, and the bridge out of the zone virtnet put it in. */
export function removeForeignFirewallActions(
  name: string,
  bridge: string,
  observed: ObservedNetwork,
): Action[] {
  const fw = firewallOf(observed);
  const actions = IPT_FAMILIES.flatMap((family) =>
    dockerActions(family, observedDockerUserAccepts(fw.iptables[family], name), []),
  );
  const zone = (recordOf(observed, name)?.spec as NetworkSpec | undefined)?.bridge?.zone;
  if (zone && fw.zone?.running && fw.zone.zone === zone)
    actions.push(...zoneActions(bridge, undefined, zone, zone));
  return actions.map(({ undo: _undo, ...a }) => a); // a delete: no undo
}
