// A round of changes to one host: one probe of every change waiting together, their plans in order, one
// script that runs them, retried when the host moved.
//
// Changes to one host from this process go through one queue per host (queue.ts). Each round probes every
// waiting change at once (the host's half of the probe once: ops/probe.ts MULTI_PROBE_SCRIPT), plans them in
// order, each plan seeing the networks the changes before it add or remove, and runs them one after the other
// in one script (ops/script.ts renderRoundScript) that expects the generation token the probe saw. A plan with
// a step that touches host-wide state (Action.shared) runs first in its round, in order as if alone; the plans
// after it join only when it makes a new network and their own host-wide steps are the same as its (then left
// to it): the first creates on a host. A delete whose host-wide steps are all host teardown closes a round of
// deletes. After a failure the rest plan again. Other processes are kept apart by the host lock and the token
// check.
import { randomUUID } from "node:crypto";
import { Host, RunResult, tail } from "../host/host";
import { AppliedNetworkRecord, ObservedNetwork } from "../observe/observed";
import { Action } from "../ops/action";
import { EXIT_HOST_CHANGED, EXIT_STEP_FAILED, SEGMENT_MARKER, STEP_FAILED_MARKER } from "../ops/helpers";
import { parseRoundOutput, renderRoundScript, RUN_STDIN_SCRIPT, Segment } from "../ops/script";
import { Plan } from "../plan/plan";
import { withinDeadline } from "./deadline";
import { NetworkError } from "./errors";
import { errorFor, probeNow, ProbeTarget, targetArgs } from "./probe";
import { dropReadAhead, readAhead, takeReadAhead } from "./readAhead";
import { HostQueues, MAX_BATCH, sleep } from "./queue";

/** How long an apply keeps planning again while other deployments change the same host. */
const HOST_CHANGED_DEADLINE_MS = 120_000;

export interface ApplyOptions {
  /** Tests only: fail on purpose right after the action with this name, to prove the rollback. */
  failAfter?: string;
  /** The stack that declares the change: recorded with what it makes (plan/dependants.ts reads it back). */
  stack?: string;
}

export interface ApplyResult {
  actions: string[];
  warnings: string[];
  /** The host as the plan saw it (before the actions). */
  observed: ObservedNetwork;
}

/** One change a resource asks of a host. */
export interface ChangeSpec {
  name: string;
  bridge: string;
  /** Also asked of the probe: how the kernel reaches this address (a route's gateway). */
  gateway?: string;
  /** The network the probe reads for a change that is not that network's own (a Port), and its TAP. */
  network?: ProbeTarget["network"];
  port?: ProbeTarget["port"];
  tftpRoot?: ProbeTarget["tftpRoot"];
  makePlan: (o: ObservedNetwork) => Plan;
  /** Undo the change's done steps when one fails (applies); deletes go on as far as they can. */
  undo: boolean;
  failAfter?: string;
  /** Runs only alone (routes: their plans are not made for sharing a round). */
  solo?: boolean;
  /** What it does to the host's list of virtnet networks, for the plans made after it in the same round. */
  effect?: { adds: AppliedNetworkRecord } | { removes: string };
}

interface Change extends Omit<ChangeSpec, "gateway" | "solo">, ProbeTarget {
  solo: boolean;
  deadline: number;
  attempt: number;
  resolve: (r: ApplyResult) => void;
  reject: (e: unknown) => void;
}

const changes = new HostQueues<Change>(
  (host, waiting) => round(host, waiting),
  (c, e) => c.reject(e), // not expected: round settles every failure it knows
  "round",
);

/** Queues a change for the host's next round; resolves when its round ran it, or found nothing to do. */
export function runChange(host: Host, c: ChangeSpec): Promise<ApplyResult> {
  const work = new Promise<ApplyResult>((resolve, reject) =>
    changes.add(host, {
      ...c,
      gateway: c.gateway ?? "",
      solo: c.solo ?? false,
      deadline: Date.now() + HOST_CHANGED_DEADLINE_MS,
      attempt: 0,
      resolve,
      reject,
    }),
  );
  return withinDeadline(host, c.name, "apply", work);
}

function settle(queue: Change[], c: Change, outcome: { ok: ApplyResult } | { error: unknown }): void {
  queue.splice(queue.indexOf(c), 1);
  if ("ok" in outcome) c.resolve(outcome.ok);
  else c.reject(outcome.error);
}

/** The waiting changes one probe serves: solo ones alone, one change per network. */
function nextBatch(queue: Change[]): Change[] {
  const batch: Change[] = [];
  for (const c of queue) {
    if (batch.length >= MAX_BATCH || (c.solo && batch.length)) break;
    // One change per network, and per bridge: a script deletes its bridges from its start.
    if (batch.some((b) => b.name === c.name || (c.bridge && b.bridge === c.bridge))) break;
    batch.push(c);
    if (c.solo) break;
  }
  return batch;
}

function withEffect(networks: AppliedNetworkRecord[], c: Change): AppliedNetworkRecord[] {
  const e = c.effect;
  if (!e) return networks;
  if ("removes" in e) return networks.filter((n) => n.name !== e.removes);
  return [...networks.filter((n) => n.name !== e.adds.name), e.adds];
}

interface Planned {
  c: Change;
  plan: Plan;
  observed: ObservedNetwork;
  segment: Segment;
}

async function round(host: Host, queue: Change[]): Promise<void> {
  const batch = nextBatch(queue);
  let observations = await takeReadAhead(host, batch);
  const readEarlier = observations !== undefined;
  try {
    observations ??= await probeNow(host, batch);
  } catch (e) {
    for (const c of batch) settle(queue, c, { error: errorFor(host, e, c.name) });
    return;
  }
  const group = planGroup(host, queue, batch, observations);
  if (!group.length) return;
  const done = await runGroup(host, queue, group, observations[0].generation, readEarlier);
  // Once the results are out and nothing else waits, read these networks again for what follows them.
  if (done) setImmediate(() => readAheadIfIdle(host, group));
}

function readAheadIfIdle(host: Host, group: Planned[]): void {
  if (changes.isIdle(host))
    readAhead(
      host,
      group.map((g) => g.c),
    );
}

const stepKey = (a: Action) => `${a.name}\n${a.run}\n${a.undo ?? ""}`;

/** Plans in order; a change whose plan needs the host to itself waits for the next round unless it is first. */
function planGroup(host: Host, queue: Change[], batch: Change[], observations: ObservedNetwork[]): Planned[] {
  const group: Planned[] = [];
  const probed = observations[0].networks;
  let networks = probed;
  // The host-wide steps of the round's first plan when it makes a new network (the first on a host prepares
  // it): the plans after it, made from the same probe, would take the same steps again.
  let leading: Set<string> | undefined;
  for (const [i, c] of batch.entries()) {
    const goneInRound = probed.filter((p) => !networks.some((n) => n.name === p.name)).map((p) => p.name);
    const observed = { ...observations[i], networks, goneInRound };
    let plan: Plan;
    try {
      plan = c.makePlan(observed);
    } catch (e) {
      settle(queue, c, { error: e });
      continue;
    }
    if (plan.errors.length) {
      settle(queue, c, { error: new NetworkError(host.label, c.name, "check host", plan.errors.join("; ")) });
      continue;
    }
    if (plan.actions.length === 0) {
      settle(queue, c, { ok: { actions: [], warnings: plan.warnings, observed } });
      continue;
    }
    let hostWide = c.solo || plan.actions.some((a) => a.shared);
    const known = leading;
    if (hostWide && known && !c.solo && plan.actions.every((a) => !a.shared || known.has(stepKey(a)))) {
      plan = { ...plan, actions: plan.actions.filter((a) => !a.shared) };
      hostWide = false;
    }
    const segment: Segment = { actions: plan.actions, undo: c.undo };
    if (hostWide && group.length) {
      // The last network's delete closes a script of deletes: its host-wide teardown runs at the script's end.
      const teardownOnly = plan.actions.every((a) => !a.shared || a.hostTeardown);
      if (!c.solo && !c.undo && teardownOnly && group.every((g) => !g.c.undo))
        group.push({ c, plan, observed, segment: { ...segment, closesRound: true } });
      break;
    }
    group.push({ c, plan, observed, segment: { ...segment, inOrder: hostWide } });
    networks = withEffect(networks, c);
    if (hostWide) {
      const makesNetwork = c.undo && !c.solo && !probed.some((p) => p.name === c.name);
      if (!makesNetwork) break;
      leading = new Set(plan.actions.filter((a) => a.shared).map(stepKey));
    }
  }
  return group;
}

/**
 * One script for the group, then each change settled by what its segment did. True when every change succeeded.
 * `readEarlier`: planned from a read-ahead, which the host moving since is no sign of contention.
 */
async function runGroup(
  host: Host,
  queue: Change[],
  group: Planned[],
  generation: string,
  readEarlier: boolean,
): Promise<boolean> {
  dropReadAhead(host);
  // The script goes on stdin: a round's files can be larger than one command line allows.
  const script = renderRoundScript(group.map((g) => g.segment));
  const args = [generation, randomUUID(), ...group.flatMap(({ c }) => [...targetArgs(c), c.failAfter ?? ""])];
  let r: RunResult;
  try {
    r = await host.run(RUN_STDIN_SCRIPT, { args, stdin: script, step: "apply" });
  } catch (e) {
    // The script's outcome is unknown: the first change gets the error, the rest plan again.
    settle(queue, group[0].c, { error: e });
    return false;
  }
  if (r.code === 0) {
    for (const { c, plan, observed } of group) settle(queue, c, { ok: applied(plan, observed) });
    return true;
  }
  if (r.code === EXIT_HOST_CHANGED && readEarlier) return false; // plan again, from a probe of its own
  if (r.code === EXIT_HOST_CHANGED) {
    // Another process applied between our probe and the lock: plan again. Each round one deployment wins the
    // lock with a fresh plan, so a burst of concurrent applies converges; jitter spreads the retries.
    let attempt = 0;
    for (const { c } of group) {
      attempt = ++c.attempt;
      if (Date.now() > c.deadline)
        settle(queue, c, {
          error: new NetworkError(
            host.label,
            c.name,
            "apply",
            `the host kept changing for ${HOST_CHANGED_DEADLINE_MS / 1000} s (${c.attempt} plans)`,
          ),
        });
    }
    await sleep(Math.min(500, 10 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random()));
    return false;
  }
  const outcome = parseRoundOutput(r.stderr);
  if (!outcome || r.code !== EXIT_STEP_FAILED) {
    // It ended before any segment (the lock) or in no way of its own (a signal, a shell error): the segment it
    // was in gets the error; the others plan again, whether they ran or not.
    const k = outcome?.last || 1;
    const { c } = group[k - 1];
    const text = outcome ? (outcome.stderr.get(k) ?? "") : r.stderr;
    settle(queue, c, { error: stepError(host, c, r.code, outcome?.failed.get(k), text) });
    return false;
  }
  // Segments up to the one that stopped the script ran (the rest plan again, as if it had succeeded).
  const ran = outcome.stoppedAt ?? group.length;
  for (const [i, { c, plan, observed }] of group.slice(0, ran).entries()) {
    const step = outcome.failed.get(i + 1);
    if (step === undefined) settle(queue, c, { ok: applied(plan, observed) });
    else settle(queue, c, { error: stepError(host, c, r.code, step, outcome.stderr.get(i + 1) ?? "") });
  }
  return false;
}

function applied(plan: Plan, observed: ObservedNetwork): ApplyResult {
  return { actions: plan.actions.map((a) => a.name), warnings: plan.warnings, observed };
}

function stepError(
  host: Host,
  c: Change,
  code: number,
  step: string | undefined,
  stderr: string,
): NetworkError {
  const text = tail(
    stderr
      .split("\n")
      .filter((l) => !l.startsWith(STEP_FAILED_MARKER) && !l.startsWith(SEGMENT_MARKER))
      .join("\n"),
  );
  const outcome =
    code === EXIT_STEP_FAILED && c.undo && step ? "; every change made before it was undone" : "";
  return new NetworkError(
    host.label,
    c.name,
    step ?? "apply",
    `failed (exit ${code})${text ? `: ${text}` : ""}${outcome}`,
  );
}
