// Create/update, read and delete of networks on one host: probe, plan, run one script (shared by the changes that
// arrive together), retry if the host moved.
import { Host, RunResult, tail } from "../host/host";
import { networkPaths } from "../naming";
import { randomUUID } from "node:crypto";
import { AppliedNetworkRecord, isOurDnsmasq, ObservedNetwork } from "../observe/observed";
import { MULTI_PROBE_SCRIPT, probeArgs, PROBE_SCRIPT } from "../ops/probe";
import { parseMultiProbe, parseProbe } from "../observe/parse";
import { Action } from "../ops/action";
import { Plan } from "../plan/plan";
import { planApply, planDelete } from "../plan/network";
import { restoreGlobalActions } from "../plan/restore";
import { parseRoundOutput, renderRoundScript, RUN_STDIN_SCRIPT } from "../ops/script";
import { EXIT_HOST_CHANGED, EXIT_STEP_FAILED, SEGMENT_MARKER, STEP_FAILED_MARKER } from "../ops/helpers";
import { NetworkSpec } from "../model/network";
import { DhcpRangeSpec } from "../model/dhcpRange";
import { isOurs, planRoute, planRouteDelete, sameKey } from "../plan/route";
import { KernelRoute } from "../observe/observed";
import { RouteSpec } from "../model/staticRoute";
import { needsDnsmasq } from "../render/dnsmasq";

/** How long an apply keeps planning again while other deployments change the same host. */
const HOST_CHANGED_DEADLINE_MS = 120_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A failure on a host, naming the host, the network and the step; never a secret. */
export class NetworkError extends Error {
  constructor(
    readonly hostLabel: string,
    readonly network: string,
    readonly step: string,
    readonly detail: string,
  ) {
    super(
      `host ${hostLabel}, ${network.startsWith("route ") ? network : `network "${network}"`}: ${step}: ${detail}`,
    );
    this.name = "NetworkError";
  }
}

export interface ApplyOptions {
  /** Tests only: fail on purpose right after the action with this name, to prove the rollback. */
  failAfter?: string;
}

export interface ApplyResult {
  actions: string[];
  warnings: string[];
  /** The host as the plan saw it (before the actions). */
  observed: ObservedNetwork;
}

// Route operations probe with a scope like "route x": its network paths are never used, only well-formed.
function safeDirName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_.-]/g, "_");
}

interface ProbeTarget {
  name: string;
  bridge: string;
  gateway: string;
}

/** One probe of the targets: the plain probe for one, the multi-network probe for several. */
async function probeNow(host: Host, targets: ProbeTarget[]): Promise<ObservedNetwork[]> {
  const argsOf = (t: ProbeTarget) =>
    probeArgs(t.name, t.bridge, networkPaths(safeDirName(t.name)), t.gateway);
  const single = targets.length === 1;
  const r = await host.run(single ? PROBE_SCRIPT : MULTI_PROBE_SCRIPT, {
    args: targets.flatMap(argsOf),
    step: "probe host",
  });
  if (r.code !== 0)
    throw new NetworkError(host.label, targets[0].name, "probe host", `exit ${r.code}: ${tail(r.stderr)}`);
  return single
    ? [parseProbe(r.stdout, targets[0].name, targets[0].bridge)]
    : parseMultiProbe(r.stdout, targets);
}

/** A failure of a probe shared by several changes or reads, as each of them reports it. */
function errorFor(host: Host, e: unknown, name: string): unknown {
  return e instanceof NetworkError && e.network !== name
    ? new NetworkError(host.label, name, e.step, e.detail)
    : e;
}

interface Settle<T> {
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

type ReadQueue = {
  waiting: (ProbeTarget & Settle<ObservedNetwork>)[];
  running: boolean;
  lastArrival: number;
};

// What the engine issues together reaches the provider over tens of milliseconds (20 deletes: ~90 ms). A round
// starts once nothing new has come for SETTLE_MS, MAX_SETTLE_MS at most, so that they share a probe and a script.
const SETTLE_MS = 8;
const MAX_SETTLE_MS = 60;

async function arrivalsSettled(q: { lastArrival: number }): Promise<void> {
  const start = Date.now();
  for (;;) {
    const quiet = Date.now() - q.lastArrival;
    if (quiet >= SETTLE_MS || Date.now() - start >= MAX_SETTLE_MS) return;
    await sleep(SETTLE_MS - quiet);
  }
}

// Reads (refresh, import) of one host that arrive together share one probe, as changes do (below).
const readQueues = new Map<string, ReadQueue>();

/** What the host has for one network (or, with the scope "route <name>", for routes), read-only. */
export function observe(host: Host, name: string, bridge: string, gateway = ""): Promise<ObservedNetwork> {
  let q = readQueues.get(host.label);
  if (!q) readQueues.set(host.label, (q = { waiting: [], running: false, lastArrival: 0 }));
  const queue = q;
  return new Promise<ObservedNetwork>((resolve, reject) => {
    queue.waiting.push({ name, bridge, gateway, resolve, reject });
    queue.lastArrival = Date.now();
    if (!queue.running) {
      queue.running = true;
      setImmediate(() => void drainReads(host, queue));
    }
  });
}

async function drainReads(host: Host, q: ReadQueue): Promise<void> {
  try {
    while (q.waiting.length) {
      await arrivalsSettled(q);
      const batch = q.waiting.splice(0, MAX_BATCH);
      try {
        const observed = await probeNow(host, batch);
        batch.forEach((t, i) => t.resolve(observed[i]));
      } catch (e) {
        for (const t of batch) t.reject(errorFor(host, e, t.name));
      }
    }
  } finally {
    q.running = false;
    if (readQueues.get(host.label) === q && !q.waiting.length) readQueues.delete(host.label);
  }
}

// Changes to one host from this process go through one queue per host. Each round probes every waiting
// change at once (the host's half of the probe once: observe.ts MULTI_PROBE_SCRIPT), plans them in order, each
// plan seeing the networks the changes before it add or remove, and runs them one after the other in one
// script (script.ts renderRoundScript) that expects the generation token the probe saw. A plan with a host-wide
// action (Action.shared) runs first in its round, in order as if alone; the plans after it join only when it
// makes a new network and their own host-wide actions are the same as its (then left to it): the first creates
// on a host. After a failure the rest plan again.
// Other processes are kept apart by the host lock and the token check.
// At most this many changes per round (200 creates + ranges on one host: 32 -> 10.9-11.5 s, 128 -> 9.4-9.7 s,
// 256 no better).
const MAX_BATCH = 128;

interface Change {
  name: string;
  bridge: string;
  gateway: string;
  makePlan: (o: ObservedNetwork) => Plan;
  undo: boolean;
  failAfter?: string;
  /** Runs only alone (routes: their plans are not marked for batching). */
  solo: boolean;
  /** What it does to the host's list of virtnet networks, for the plans made after it in the same round. */
  effect?: { adds: AppliedNetworkRecord } | { removes: string };
  deadline: number;
  attempt: number;
  resolve: (r: ApplyResult) => void;
  reject: (e: unknown) => void;
}

type ChangeQueue = { changes: Change[]; running: boolean; lastArrival: number };

const hostQueues = new Map<string, ChangeQueue>();

type ChangeSpec = Pick<Change, "name" | "bridge" | "makePlan" | "undo" | "failAfter" | "effect"> & {
  gateway?: string;
  solo?: boolean;
};

function runPlan(host: Host, c: ChangeSpec): Promise<ApplyResult> {
  let q = hostQueues.get(host.label);
  if (!q) hostQueues.set(host.label, (q = { changes: [], running: false, lastArrival: 0 }));
  const queue = q;
  return new Promise<ApplyResult>((resolve, reject) => {
    queue.changes.push({
      ...c,
      gateway: c.gateway ?? "",
      solo: c.solo ?? false,
      deadline: Date.now() + HOST_CHANGED_DEADLINE_MS,
      attempt: 0,
      resolve,
      reject,
    });
    queue.lastArrival = Date.now();
    if (!queue.running) {
      queue.running = true;
      setImmediate(() => void drain(host, queue));
    }
  });
}

async function drain(host: Host, q: ChangeQueue): Promise<void> {
  try {
    while (q.changes.length) {
      try {
        await arrivalsSettled(q);
        await round(host, q.changes);
      } catch (e) {
        // Not expected (round settles every failure it knows); never leave a change waiting forever.
        for (const c of [...q.changes]) settle(q.changes, c, { error: e });
      }
    }
  } finally {
    q.running = false;
    if (hostQueues.get(host.label) === q && !q.changes.length) hostQueues.delete(host.label);
  }
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

async function round(host: Host, queue: Change[]): Promise<void> {
  const batch = nextBatch(queue);
  let observations: ObservedNetwork[];
  try {
    observations = await probeNow(host, batch);
  } catch (e) {
    for (const c of batch) settle(queue, c, { error: errorFor(host, e, c.name) });
    return;
  }
  // Plan in order; a change whose plan needs the host to itself waits for the next round unless it is first.
  const group: { c: Change; plan: Plan; observed: ObservedNetwork; inOrder?: boolean }[] = [];
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
    if (hostWide && group.length) {
      // The last network's delete closes a script of deletes: its host-wide teardown runs at the script's end.
      const teardownOnly = plan.actions.every((a) => !a.shared || a.hostTeardown);
      if (!c.solo && !c.undo && teardownOnly && group.every((g) => !g.c.undo)) {
        const late = plan.actions.map((a) => (a.hostTeardown ? { ...a, atRoundEnd: true } : a));
        group.push({ c, plan: { ...plan, actions: late }, observed });
      }
      break;
    }
    group.push({ c, plan, observed, inOrder: hostWide });
    networks = withEffect(networks, c);
    if (hostWide) {
      const makesNetwork = c.undo && !c.solo && !probed.some((p) => p.name === c.name);
      if (!makesNetwork) break;
      leading = new Set(plan.actions.filter((a) => a.shared).map(stepKey));
    }
  }
  if (!group.length) return;
  // One script for the group. It goes on stdin: a round's files can be larger than one command line allows.
  const script = renderRoundScript(
    group.map(({ c, plan, inOrder }) => ({ actions: plan.actions, undo: c.undo, inOrder })),
  );
  const args = [
    observations[0].generation,
    randomUUID(),
    ...group.flatMap(({ c }) => [
      ...probeArgs(c.name, c.bridge, networkPaths(safeDirName(c.name)), c.gateway),
      c.failAfter ?? "",
    ]),
  ];
  let r: RunResult;
  try {
    r = await host.run(RUN_STDIN_SCRIPT, { args, stdin: script, step: "apply" });
  } catch (e) {
    // The script's outcome is unknown: the first change gets the error, the rest plan again.
    settle(queue, group[0].c, { error: e });
    return;
  }
  if (r.code === 0) {
    for (const { c, plan, observed } of group) settle(queue, c, { ok: applied(plan, observed) });
    return;
  }
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
    return;
  }
  const outcome = parseRoundOutput(r.stderr);
  if (!outcome || r.code !== EXIT_STEP_FAILED) {
    // It ended before any segment (the lock) or in no way of its own (a signal, a shell error): the segment it
    // was in gets the error; the others plan again, whether they ran or not.
    const k = outcome?.last || 1;
    const { c } = group[k - 1];
    const text = outcome ? (outcome.stderr.get(k) ?? "") : r.stderr;
    settle(queue, c, { error: stepError(host, c, r.code, outcome?.failed.get(k), text) });
    return;
  }
  // Segments up to the one that stopped the script ran (the rest plan again, as if it had succeeded).
  const ran = outcome.stoppedAt ?? group.length;
  for (const [i, { c, plan, observed }] of group.slice(0, ran).entries()) {
    const step = outcome.failed.get(i + 1);
    if (step === undefined) settle(queue, c, { ok: applied(plan, observed) });
    else settle(queue, c, { error: stepError(host, c, r.code, step, outcome.stderr.get(i + 1) ?? "") });
  }
}

const stepKey = (a: Action) => `${a.name}\n${a.run}\n${a.undo ?? ""}`;

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

/** Makes the host match `spec`: creates, repairs or updates in place. Runs nothing mutating when in sync. */
export function applyNetwork(host: Host, spec: NetworkSpec, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const paths = networkPaths(spec.name);
  const adds: AppliedNetworkRecord = { name: spec.name, mode: spec.mode, bridge: spec.bridge.name, spec };
  if (spec.ipv4) adds.cidr = spec.ipv4.cidr;
  return runPlan(host, {
    name: spec.name,
    bridge: spec.bridge.name,
    makePlan: (o) => planApply(spec, o, paths), // ranges: as recorded on the host
    undo: true,
    failAfter: opts.failAfter,
    effect: { adds },
  });
}

/** Removes the network and everything virtnet made for it. Succeeds when it is already gone. */
export function deleteNetwork(host: Host, name: string, bridge: string): Promise<ApplyResult> {
  const paths = networkPaths(name);
  return runPlan(host, {
    name,
    bridge,
    makePlan: (o) => planDelete(name, bridge, o, paths),
    undo: false,
    effect: { removes: name },
  });
}

export interface NetworkStatus {
  /** False when nothing of the network is left on the host. */
  exists: boolean;
  /** What `up` would change to repair the host: empty when the host matches. */
  drift: string[];
  warnings: string[];
  dnsmasqPid?: number;
  bridgePorts: string[];
  observed: ObservedNetwork;
}

export async function readNetwork(host: Host, spec: NetworkSpec): Promise<NetworkStatus> {
  const paths = networkPaths(spec.name);
  const observed = await observe(host, spec.name, spec.bridge.name);
  const ours = isOurDnsmasq(observed, paths.dnsmasqConf);
  const exists =
    observed.bridge !== undefined ||
    observed.nftListing !== undefined ||
    ours ||
    observed.networks.some((n) => n.name === spec.name);
  const plan = planApply(spec, observed, paths);
  // Pending range-record writes are not drift of the network itself.
  const drift = plan.errors.length ? plan.errors : plan.actions.map((a) => a.name);
  const status: NetworkStatus = {
    exists,
    drift,
    warnings: plan.warnings,
    bridgePorts: observed.bridge?.ports ?? [],
    observed,
  };
  if (ours && needsDnsmasq(spec, observed.ranges)) status.dnsmasqPid = observed.dnsmasq!.pid;
  return status;
}

/** The network a DHCP range belongs to, as its outputs name it. */
export interface NetworkRef {
  name: string;
  bridge: string;
}

function noNetwork(ref: NetworkRef): Plan {
  return {
    errors: [`network "${ref.name}" does not exist on this host: create its VirtualNetwork first`],
    warnings: [],
    actions: [],
  };
}

/**
 * Converges a network's dnsmasq from the host's record of the network plus the ranges `choose` returns.
 * `choose` gets the recorded ranges and returns the wanted ones, or undefined when there is nothing to do.
 */
function convergeRanges(
  host: Host,
  ref: NetworkRef,
  choose: (recorded: DhcpRangeSpec[]) => DhcpRangeSpec[] | undefined,
  missingNetwork: (ref: NetworkRef) => Plan,
  failAfter?: string,
): Promise<ApplyResult> {
  const paths = networkPaths(ref.name);
  const plan = (o: ObservedNetwork): Plan => {
    const record = o.networks.find((n) => n.name === ref.name);
    if (!record?.spec) return missingNetwork(ref);
    const ranges = choose(o.ranges);
    if (!ranges) return { errors: [], warnings: [], actions: [] };
    return planApply(record.spec as NetworkSpec, o, paths, { ranges });
  };
  return runPlan(host, {
    name: ref.name,
    bridge: ref.bridge,
    makePlan: plan,
    undo: true,
    failAfter,
  });
}

const nothingToDo = (): Plan => ({ errors: [], warnings: [], actions: [] });

/** Adds or changes one range: the network's dnsmasq is converged from the host's record plus all ranges. */
export function applyRange(
  host: Host,
  ref: NetworkRef,
  range: DhcpRangeSpec,
  opts: ApplyOptions = {},
): Promise<ApplyResult> {
  const choose = (recorded: DhcpRangeSpec[]) => [...recorded.filter((r) => r.name !== range.name), range];
  return convergeRanges(host, ref, choose, noNetwork, opts.failAfter);
}

/** Removes one range; the network's dnsmasq keeps serving the others and DNS. Success when already gone. */
export function deleteRange(host: Host, ref: NetworkRef, rangeName: string): Promise<ApplyResult> {
  const choose = (recorded: DhcpRangeSpec[]) =>
    recorded.some((r) => r.name === rangeName) ? recorded.filter((r) => r.name !== rangeName) : undefined;
  return convergeRanges(host, ref, choose, nothingToDo);
}

/** The range as recorded on the host, or undefined when it is gone. */
export async function readRange(
  host: Host,
  ref: NetworkRef,
  rangeName: string,
): Promise<DhcpRangeSpec | undefined> {
  const observed = await observe(host, ref.name, ref.bridge);
  return observed.ranges.find((r) => r.name === rangeName);
}

export interface Lease {
  mac: string;
  ip: string;
  hostname?: string;
  /** Seconds since the epoch; 0 for an infinite lease. */
  expiry: number;
  clientId?: string;
}

/** Current leases, from dnsmasq's lease file (like `virsh net-dhcp-leases`). */
export async function readLeases(host: Host, networkName: string): Promise<Lease[]> {
  const text = (await host.readFile(networkPaths(networkName).leases)) ?? "";
  return text
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4 && /^\d+$/.test(f[0]))
    .map(([expiry, mac, ip, hostname, clientId]) => {
      const lease: Lease = { mac, ip, expiry: Number(expiry) };
      if (hostname && hostname !== "*") lease.hostname = hostname;
      if (clientId && clientId !== "*") lease.clientId = clientId;
      return lease;
    });
}

/** Adds or changes one static route: only virtnet's own routes are ever replaced. */
export function applyRoute(host: Host, spec: RouteSpec, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const plan = (o: ObservedNetwork): Plan => {
    const p = planRoute(spec, o.route);
    if (!p.errors.length && p.actions.length) p.actions.push(...restoreGlobalActions(o, true));
    return p;
  };
  return runPlan(host, {
    name: routeScope(spec.name),
    bridge: "",
    makePlan: plan,
    undo: true,
    failAfter: opts.failAfter,
    gateway: spec.gateway,
    solo: true,
  });
}

export function deleteRoute(host: Host, name: string): Promise<ApplyResult> {
  const plan = (o: ObservedNetwork): Plan =>
    planRouteDelete(name, o.route, o.networks.length > 0, restoreGlobalActions(o, false));
  return runPlan(host, { name: routeScope(name), bridge: "", makePlan: plan, undo: false, solo: true });
}

export interface RouteStatus {
  /** The record of the route on the host, when virtnet knows it. */
  recorded?: RouteSpec;
  /** The kernel's route with the recorded key and virtnet's protocol, when present. */
  kernel?: KernelRoute;
}

export async function readRoute(host: Host, name: string): Promise<RouteStatus> {
  const o = await observe(host, routeScope(name), "");
  const recorded = o.route.records.find((r) => r.name === name);
  const status: RouteStatus = {};
  if (recorded) {
    status.recorded = recorded;
    const k = o.route.kernel.find((r) => sameKey(r, recorded) && isOurs(r));
    if (k) status.kernel = k;
  }
  return status;
}

// Routes share the probe with networks; they are named in errors as "route <name>".
function routeScope(name: string): string {
  return `route ${name}`;
}
