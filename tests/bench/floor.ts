// The raw floor: the host commands virtnet generates, run directly inside a lab host's namespaces (nsenter),
// with no SSH and no Pulumi.
//
// - `floorCreate`: per network, the plan for the host as it is (a read-only probe, not timed) of the network
//   WITH its DHCP range, rendered by provider/plan/ + provider/render/* into the one apply script
//   virtnet would send (provider/ops/script.ts: host lock, state check, `ip -batch`, one `nft -f`, files,
//   one dnsmasq start), run with `sh -c` exactly as the SSH transport's command line does. Only the apply
//   scripts are timed, one after the other.
// - `floorDestroy`: the same for planDelete.
// - `lifecycleCreate`/`lifecycleDestroy`: virtnet's own lifecycle (provider/orchestration/: probe, plan,
//   apply, retry when the host changed in between) for the network, then for its range, over a Host that runs
//   commands through nsenter instead of SSH: what the engine-path figures cost minus SSH and Pulumi.
import { RunResult } from "../../provider/host/host";
import { networkPaths } from "../../provider/naming";
import { buildRangeSpec, DhcpRangeSpec } from "../../provider/model/dhcpRange";
import { applyNetwork, deleteNetwork } from "../../provider/orchestration/network";
import { applyRange, deleteRange } from "../../provider/orchestration/range";
import { parseProbe } from "../../provider/observe/parse";
import { PROBE_SCRIPT, probeArgs } from "../../provider/ops/probe";
import { planApply, planDelete } from "../../provider/plan/network";
import { renderApplyScript } from "../../provider/ops/script";
import { buildNetworkSpec, NetworkSpec } from "../../provider/model/network";
import { hostExec } from "../lab/lab";
import { nsenterHost } from "../support/countingHost";
import { BenchNet, subnetBase } from "./stacks";

/** The network and range specs virtnet builds from the bench program's inputs. */
export function specsOf(n: BenchNet, dnsName = "db"): { spec: NetworkSpec; range: DhcpRangeSpec } {
  const base = subnetBase(n);
  const built = buildNetworkSpec(
    {
      mode: "nat",
      ipv4: { cidr: `${base}.0/24` },
      dns: { hosts: [{ ip: `${base}.10`, hostnames: [dnsName] }] },
    },
    n.name,
  );
  if (!built.spec) throw new Error(`${n.name}: ${JSON.stringify(built.errors)}`);
  const spec = built.spec;
  const r = buildRangeSpec({ start: `${base}.100`, end: `${base}.199` }, `${n.name}-dhcp`, {
    cidr: spec.ipv4!.cidr,
    gateway: spec.ipv4!.gateway,
  });
  if (!r.spec) throw new Error(`${n.name}-dhcp: ${JSON.stringify(r.errors)}`);
  return { spec, range: r.spec };
}

/** Runs a script inside the host as the SSH transport would: `/bin/sh -c <script> virtnet <args...>`. */
async function hostScript(host: string, script: string, args: string[]): Promise<RunResult & { ms: number }> {
  const t0 = process.hrtime.bigint();
  const r = await hostExec(host, ["/bin/sh", "-c", script, "virtnet", ...args], { timeoutMs: 120_000 });
  return { ...r, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

async function probe(host: string, spec: { name: string; bridge: string }) {
  const args = probeArgs(spec.name, spec.bridge, networkPaths(spec.name));
  const r = await hostScript(host, PROBE_SCRIPT, args);
  if (r.code !== 0) throw new Error(`${host}: probe of ${spec.name} failed (exit ${r.code}): ${r.stderr}`);
  return { observed: parseProbe(r.stdout, spec.name, spec.bridge), args, ms: r.ms, bytes: r.stdout.length };
}

export interface FloorResult {
  /** Sum of the timed apply scripts. */
  applyMs: number;
  /** Wall time of the whole loop, probes included. */
  wallMs: number;
  probeMs: number;
  scripts: number;
  actions: number;
  /** The probe on the host as it was before the first network, and before the last one. */
  probes: { ms: number; bytes: number }[];
}

export async function floorCreate(host: string, nets: BenchNet[]): Promise<FloorResult> {
  const res: FloorResult = { applyMs: 0, wallMs: 0, probeMs: 0, scripts: 0, actions: 0, probes: [] };
  const t0 = Date.now();
  for (const [i, n] of nets.entries()) {
    const { spec, range } = specsOf(n);
    const p = await probe(n.host.name, { name: spec.name, bridge: spec.bridge.name });
    res.probeMs += p.ms;
    if (i === 0 || i === nets.length - 1) res.probes.push({ ms: p.ms, bytes: p.bytes });
    const plan = planApply(spec, p.observed, networkPaths(spec.name), { ranges: [range] });
    if (plan.errors.length) throw new Error(`${n.name}: ${plan.errors.join("; ")}`);
    const r = await hostScript(n.host.name, renderApplyScript(plan.actions, true), [
      ...p.args,
      p.observed.generation,
      "",
    ]);
    if (r.code !== 0) throw new Error(`${n.name}: floor apply failed (exit ${r.code}): ${r.stderr}`);
    res.applyMs += r.ms;
    res.scripts++;
    res.actions += plan.actions.length;
  }
  res.wallMs = Date.now() - t0;
  return res;
}

export async function floorDestroy(host: string, nets: BenchNet[]): Promise<FloorResult> {
  const res: FloorResult = { applyMs: 0, wallMs: 0, probeMs: 0, scripts: 0, actions: 0, probes: [] };
  const t0 = Date.now();
  for (const n of [...nets].reverse()) {
    const { spec } = specsOf(n);
    const p = await probe(n.host.name, { name: spec.name, bridge: spec.bridge.name });
    res.probeMs += p.ms;
    const plan = planDelete(spec.name, spec.bridge.name, p.observed, networkPaths(spec.name));
    if (plan.actions.length === 0) continue;
    const r = await hostScript(n.host.name, renderApplyScript(plan.actions, false), [
      ...p.args,
      p.observed.generation,
      "",
    ]);
    if (r.code !== 0) throw new Error(`${n.name}: floor delete failed (exit ${r.code}): ${r.stderr}`);
    res.applyMs += r.ms;
    res.scripts++;
    res.actions += plan.actions.length;
  }
  res.wallMs = Date.now() - t0;
  return res;
}

export interface LifecycleResult {
  wallMs: number;
  /** Host runs by step ("probe host", "apply") during the timed part. */
  counts: Record<string, number>;
  /** Time in those runs, by step: virtnet's own host commands, without SSH, Pulumi or planning. */
  ms: Record<string, number>;
  /** Errors of the operations that failed (create: then redone one at a time, not timed in wallMs). */
  errors: string[];
  redoMs: number;
}

/** applyNetwork then applyRange for every network, all networks at once (as the engine issues creates). What
 * fails is redone afterwards, one network at a time, so that the host ends complete. */
export async function lifecycleCreate(host: string, nets: BenchNet[]): Promise<LifecycleResult> {
  const h = nsenterHost(host);
  const one = async (n: BenchNet) => {
    const { spec, range } = specsOf(n);
    await applyNetwork(h, spec);
    await applyRange(h, { name: spec.name, bridge: spec.bridge.name }, range);
  };
  const t0 = Date.now();
  const settled = await Promise.allSettled(nets.map(one));
  const wallMs = Date.now() - t0;
  const counts = { ...h.counts };
  const ms = { ...h.ms };
  const errors: string[] = [];
  const t1 = Date.now();
  for (const [i, r] of settled.entries()) {
    if (r.status === "fulfilled") continue;
    errors.push(r.reason instanceof Error ? r.reason.message : String(r.reason));
    await one(nets[i]);
  }
  return { wallMs, counts, ms, errors, redoMs: Date.now() - t1 };
}

/** deleteRange for every network at once, then deleteNetwork for every network at once: the engine's antichains
 * (`pulumi destroy` deletes what nothing left depends on, in parallel). */
export async function lifecycleDestroy(host: string, nets: BenchNet[]): Promise<LifecycleResult> {
  const h = nsenterHost(host);
  const t0 = Date.now();
  const specs = nets.map((n) => specsOf(n));
  await Promise.all(
    specs.map(({ spec, range }) => deleteRange(h, { name: spec.name, bridge: spec.bridge.name }, range.name)),
  );
  await Promise.all(specs.map(({ spec }) => deleteNetwork(h, spec.name, spec.bridge.name)));
  return { wallMs: Date.now() - t0, counts: h.counts, ms: h.ms, errors: [], redoMs: 0 };
}

/** Removes every virtnet network named bn* from a lab host (a safety net after an interrupted run). */
export async function removeBenchNetworks(host: string): Promise<string[]> {
  const r = await hostExec(host, [
    "sh",
    "-c",
    'for f in /var/lib/virtnet/networks/bn*/network.json; do [ -f "$f" ] && cat "$f" && echo; done',
  ]);
  const removed: string[] = [];
  const h = nsenterHost(host);
  for (const line of r.stdout.split("\n").filter((l) => l.trim())) {
    const rec = JSON.parse(line) as { name: string; bridge: string; table?: string };
    await deleteNetwork(h, rec.name, rec.bridge);
    removed.push(rec.name);
  }
  return removed;
}
