// A host's next probe, read while the host is idle after a round. What the engine asks next of the same
// networks (their DHCP ranges, Ports, routes) reaches the provider only once Pulumi has returned the round's
// results and the program has registered what depends on them (20 networks: ~0.1 s), so the next round's
// probe can be read in that gap. A read that went stale is never applied: the round script checks the host's
// generation token under the host lock, and the round then plans again from a probe of its own.
import { Host } from "../host/host";
import { ObservedNetwork } from "../observe/observed";
import { probeNow, ProbeTarget, targetArgs } from "./probe";

/** A read-ahead serves a round that starts while it runs or within this long of its end. */
const READ_AHEAD_TTL_MS = 2000;

interface ReadAhead {
  keys: string[];
  /** When its probe ended (undefined while it runs). */
  ended?: number;
  observed: Promise<ObservedNetwork[] | undefined>;
}

const pending = new Map<string, ReadAhead>();

const keyOf = (t: ProbeTarget) => JSON.stringify(targetArgs(t));

/** Probes `targets` now, in the background, for the host's next round; a failure only loses the read. */
export function readAhead(host: Host, targets: ProbeTarget[]): void {
  const observed = probeNow(host, targets, "probe ahead").then(
    (o) => ((a.ended = Date.now()), o),
    () => undefined,
  );
  const a: ReadAhead = { keys: targets.map(keyOf), observed };
  pending.set(host.label, a);
}

/** Forgets the host's read-ahead: something is about to change the host outside a round. */
export function dropReadAhead(host: Host): void {
  pending.delete(host.label);
}

/**
 * The host's read-ahead as observations of `targets` (in their order) when it read every one of them and is
 * recent; undefined otherwise. Taken once: the round that asks uses it or probes again.
 */
export async function takeReadAhead(
  host: Host,
  targets: ProbeTarget[],
): Promise<ObservedNetwork[] | undefined> {
  const a = pending.get(host.label);
  pending.delete(host.label);
  if (!a || (a.ended !== undefined && Date.now() - a.ended > READ_AHEAD_TTL_MS)) return undefined;
  const at = targets.map((t) => a.keys.indexOf(keyOf(t)));
  if (at.some((i) => i < 0)) return undefined;
  // One still running is waited for as a probe of the round's own would be.
  const observed = await a.observed;
  return observed && at.map((i) => observed[i]);
}
