// Create/update, read and delete of one network on one host: probe, plan, run one script, retry if the host moved.
import { Host, tail } from "../host/host";
import { networkPaths } from "../naming";
import { parseProbe, probeArgs, ObservedNetwork, PROBE_SCRIPT, isOurDnsmasq } from "./observe";
import { Plan, planApply, planDelete, restoreGlobalActions } from "./plan";
import { EXIT_HOST_CHANGED, EXIT_STEP_FAILED, renderApplyScript, STEP_FAILED_MARKER } from "./script";
import { NetworkSpec } from "./spec";
import { DhcpRangeSpec } from "./dhcp";
import { isOurs, KernelRoute, planRoute, planRouteDelete, RouteSpec, sameKey } from "./route";
import { needsDnsmasq } from "../render/dnsmasq";

/** How long an apply keeps planning again while other deployments change the same host. */
const HOST_CHANGED_DEADLINE_MS = 120_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Only nft identifiers reach nft as a table name: nft parses its arguments as one command line. */
const NFT_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A failure on a host, naming the host, the network and the step; never a secret. */
export class NetworkError extends Error {
  constructor(
    readonly hostLabel: string,
    readonly network: string,
    readonly step: string,
    detail: string,
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
  /** The firewall table the network had before, when its name changes in place. */
  previousTable?: string;
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

export async function observe(
  host: Host,
  name: string,
  bridge: string,
  table?: string,
  gateway = "",
): Promise<ObservedNetwork> {
  if (table !== undefined && table !== "" && !NFT_IDENTIFIER.test(table))
    throw new NetworkError(host.label, name, "check host", `"${table}" is not a virtnet firewall table name`);
  const r = await host.run(PROBE_SCRIPT, {
    args: probeArgs(bridge, table, networkPaths(safeDirName(name)), gateway),
    step: "probe host",
  });
  if (r.code !== 0)
    throw new NetworkError(host.label, name, "probe host", `exit ${r.code}: ${tail(r.stderr)}`);
  return parseProbe(r.stdout, bridge, table);
}

// Operations on one host from this process take turns: concurrent plans of one deployment would otherwise
// keep invalidating each other's probe (it covers host-wide state) and re-plan again and again. Other
// processes are kept apart by the host lock and the probe-hash check in the apply script.
const hostQueues = new Map<string, Promise<unknown>>();

function onHostInTurn<T>(host: Host, work: () => Promise<T>): Promise<T> {
  const previous = hostQueues.get(host.label) ?? Promise.resolve();
  const next = previous.then(work, work);
  const settled = next.then(
    () => undefined,
    () => undefined,
  );
  hostQueues.set(host.label, settled);
  void settled.then(() => {
    if (hostQueues.get(host.label) === settled) hostQueues.delete(host.label);
  });
  return next;
}

function runPlan(...args: Parameters<typeof runPlanNow>): Promise<ApplyResult> {
  return onHostInTurn(args[0], () => runPlanNow(...args));
}

async function runPlanNow(
  host: Host,
  name: string,
  bridge: string,
  table: string | undefined,
  makePlan: (o: ObservedNetwork) => Plan,
  undo: boolean,
  failAfter?: string,
  gateway = "",
): Promise<ApplyResult> {
  const deadline = Date.now() + HOST_CHANGED_DEADLINE_MS;
  for (let attempt = 1; ; attempt++) {
    const observed = await observe(host, name, bridge, table, gateway);
    const plan = makePlan(observed);
    if (plan.errors.length) throw new NetworkError(host.label, name, "check host", plan.errors.join("; "));
    if (plan.actions.length === 0) return { actions: [], warnings: plan.warnings, observed };
    const args = [
      ...probeArgs(bridge, table, networkPaths(safeDirName(name)), gateway),
      observed.generation,
      failAfter ?? "",
    ];
    const r = await host.run(renderApplyScript(plan.actions, undo), { args, step: "apply" });
    if (r.code === 0) return { actions: plan.actions.map((a) => a.name), warnings: plan.warnings, observed };
    if (r.code === EXIT_HOST_CHANGED) {
      // Another apply came in between probe and lock: plan again. Each round one deployment wins the lock
      // with a fresh plan, so a burst of concurrent applies converges; jitter spreads the retries.
      if (Date.now() > deadline)
        throw new NetworkError(
          host.label,
          name,
          "apply",
          `the host kept changing for ${HOST_CHANGED_DEADLINE_MS / 1000} s (${attempt} plans)`,
        );
      await sleep(Math.min(500, 10 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random()));
      continue;
    }
    const failed = r.stderr.split("\n").find((l) => l.startsWith(STEP_FAILED_MARKER));
    const step = failed ? failed.slice(STEP_FAILED_MARKER.length) : "apply";
    const stderr = tail(
      r.stderr
        .split("\n")
        .filter((l) => !l.startsWith(STEP_FAILED_MARKER))
        .join("\n"),
    );
    const outcome = r.code === EXIT_STEP_FAILED && undo ? "; every change made before it was undone" : "";
    throw new NetworkError(
      host.label,
      name,
      step,
      `failed (exit ${r.code})${stderr ? `: ${stderr}` : ""}${outcome}`,
    );
  }
}

/** Makes the host match `spec`: creates, repairs or updates in place. Runs nothing mutating when in sync. */
export function applyNetwork(host: Host, spec: NetworkSpec, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const paths = networkPaths(spec.name);
  return runPlan(
    host,
    spec.name,
    spec.bridge.name,
    spec.firewallTable ?? opts.previousTable,
    (o) => planApply(spec, o, paths, { table: opts.previousTable }), // ranges: as recorded on the host
    true,
    opts.failAfter,
  );
}

/** Removes the network and everything virtnet made for it. Succeeds when it is already gone. */
export function deleteNetwork(
  host: Host,
  name: string,
  bridge: string,
  table?: string,
): Promise<ApplyResult> {
  const paths = networkPaths(name);
  return runPlan(host, name, bridge, table, (o) => planDelete(name, bridge, table, o, paths), false);
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
  const observed = await observe(host, spec.name, spec.bridge.name, spec.firewallTable);
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
  table?: string;
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
  return runPlan(host, ref.name, ref.bridge, ref.table, plan, true, failAfter);
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
  const observed = await observe(host, ref.name, ref.bridge, ref.table);
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
  return runPlan(host, routeScope(spec.name), "", undefined, plan, true, opts.failAfter, spec.gateway);
}

export function deleteRoute(host: Host, name: string): Promise<ApplyResult> {
  const plan = (o: ObservedNetwork): Plan =>
    planRouteDelete(name, o.route, o.networks.length > 0, restoreGlobalActions(o, false));
  return runPlan(host, routeScope(name), "", undefined, plan, false);
}

export interface RouteStatus {
  /** The record of the route on the host, when virtnet knows it. */
  recorded?: RouteSpec;
  /** The kernel's route with the recorded key and virtnet's protocol, when present. */
  kernel?: KernelRoute;
}

export async function readRoute(host: Host, name: string): Promise<RouteStatus> {
  const o = await observe(host, routeScope(name), "", undefined);
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
