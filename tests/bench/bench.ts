// `npm run bench [-- --quick | flags]`: virtnet against libvirt and against the host's raw floor, on the local
// lab, every virtnet step through the engine path (the real dynamic-provider plugin over gRPC). Prints ONE
// table: figures, targets, ratios and PASS/MISS, all measured in this run; then the engine's per-call timings.
// It reports; it exits non-zero only when something broke (not on a missed target). See tests/bench/README.md.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { DeploymentError, repoRoot, RunResult, TestStack } from "../engine/engine";
import {
  guestAdd,
  guestDel,
  guestDhcp,
  LabError,
  LabHost,
  labDown,
  labStatus,
  labUp,
  UpResult,
} from "../lab/lab";
import {
  defineAndStart,
  destroyAndUndefine,
  Libvirtd,
  libvirtdStart,
  libvirtdStop,
  LibvirtNetwork,
  libvirtNetworks,
} from "../lab/libvirt";
import { ensureDebianPackages } from "./ensure";
import { floorCreate, floorDestroy, lifecycleCreate, lifecycleDestroy, removeBenchNetworks } from "./floor";
import { BenchApi, MORE_ROWS } from "./more";
import { addExtensionRow } from "./stretch";
import { physicalCleanup, physicalCreate, physicalDestroy, PhysicalResult } from "./physical";
import { msStr, ratioStr, renderTable, Row, secs, verdict } from "./report";
import { CONNECT_TIMEOUT_MS, transportFigures } from "./transport";
import {
  benchNets,
  benchProgram,
  BenchNet,
  bridgeOf,
  describeRun,
  EngineRun,
  fmtOps,
  fmtRpc,
  loginsSince,
  markLogins,
  snapshotProject,
  median,
  withTiming,
} from "./stacks";
import { TimingSpan } from "../../provider/timing";

interface Converged {
  runs: EngineRun[];
  first: EngineRun;
  /** Summed over the runs it took: the whole run, Pulumi's fixed part of it, the provider's part, virtnet's own
   * time in that part. */
  wallMs: number;
  fixedMs?: number;
  providerMs?: number;
  virtnetMs?: number;
  /** The first run succeeded. */
  ok: boolean;
  /** The last run succeeded (with max 1 run, a failed run is returned, not thrown). */
  converged: boolean;
}

interface Options {
  networks: number;
  scale: number;
  hosts: number;
  perHost: number;
  labRounds: number;
  quick: boolean;
  skip: Set<string>;
  json?: string;
  keepLab: boolean;
}

const USAGE = `usage: npm run bench [-- options]
  --quick          smoke run: 3 networks, 20 for scaling, 3 hosts x 3 networks, 1 lab round
  --networks N     networks for the create/update/destroy, libvirt and floor rows (default 20)
  --scale N        networks on one host for the scaling row (default 200; at most 256)
  --hosts N        hosts for the multi-host row (default 8)
  --per-host N     networks per host for the multi-host row (default 10)
  --lab-rounds N   lab down/up rounds for the lab row, median reported (default 3)
  --skip LIST      comma-separated: lab, ssh, libvirt, floor, physical, lease, scale, multihost, stretch
                   (adding a NetworkExtension on the multi-host lab), more, or a more.ts row's name such as
                   vm or vxlan (skipping lab reuses a running 2-host lab instead of timing down/up rounds)
  --keep-lab       leave the lab up at the end (default: lab down)
  --json FILE      also write every figure as JSON`;

function parseArgs(argv: string[]): Options {
  const o: Options = {
    networks: 20,
    scale: 200,
    hosts: 8,
    perHost: 10,
    labRounds: 3,
    quick: false,
    skip: new Set(),
    keepLab: false,
  };
  const num = (i: number, name: string) => {
    const v = Number(argv[i + 1]);
    if (!Number.isInteger(v) || v < 1) throw new Error(`${name} needs a positive integer`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--quick") {
      Object.assign(o, { quick: true, networks: 3, scale: 20, hosts: 3, perHost: 3, labRounds: 1 });
    } else if (a === "--networks") o.networks = num(i++, a);
    else if (a === "--scale") o.scale = num(i++, a);
    else if (a === "--hosts") o.hosts = num(i++, a);
    else if (a === "--per-host") o.perHost = num(i++, a);
    else if (a === "--lab-rounds") o.labRounds = num(i++, a);
    else if (a === "--skip") o.skip = new Set((argv[++i] ?? "").split(",").filter(Boolean));
    else if (a === "--json") o.json = argv[++i];
    else if (a === "--keep-lab") o.keepLab = true;
    else if (a === "-h" || a === "--help") {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown option ${a}\n${USAGE}`);
  }
  if (o.scale > 256 || o.networks > 256 || o.perHost > 256) throw new Error("at most 256 networks per /16");
  if (o.hosts < 2 || o.hosts > 9) throw new Error("--hosts must be 2..9");
  return o;
}

const log = (s: string) => process.stderr.write(`bench: ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The lab is shared with other test runs: a LabError from a concurrent rebuild is retried after a pause. */
async function labUpRetry(hosts: number): Promise<UpResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await labUp({ hosts });
    } catch (e) {
      if (!(e instanceof LabError) || attempt >= 6) throw e;
      log(`lab up failed (${e.message.split("\n")[0]}); retrying in 5 s`);
      await sleep(5000);
    }
  }
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, value };
}

/** The lab hosts' PID 1s ("" when the lab is not up): they change when anyone rebuilds the lab. A phase
 * during which that happened (another test run on the shared lab) is reported as broken. */
function labPids(): string {
  try {
    return labStatus()
      .hosts.map((h) => `${h.name}:${h.pid}`)
      .join(",");
  } catch {
    return "";
  }
}

/** Newest mtime under the built provider and SDK: the plugin loads them afresh for every engine run, so a
 * rebuild by someone else during the bench would mix two builds in one table. */
function buildStamp(): number {
  let newest = 0;
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".js")) newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  for (const d of ["provider", "sdk"]) {
    const dir = `${__dirname}/../../${d}`;
    if (fs.existsSync(dir)) walk(dir);
  }
  return newest;
}

function gitRevision(): string {
  const r = spawnSync("git", ["describe", "--always", "--dirty"], { cwd: __dirname, encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : "unknown";
}

function hostOf(name: string): LabHost {
  const h = labStatus().hosts.find((x) => x.name === name);
  if (!h) throw new Error(`no lab host ${name}`);
  return h;
}

class Bench implements BenchApi {
  readonly rows: Row[] = [];
  readonly runs: EngineRun[] = [];
  readonly figures: Record<string, unknown> = {};
  readonly errors: string[] = [];
  projectDir = "";
  snapshotRoot = "";
  /** Stacks that may still hold resources (destroyed in cleanup). */
  readonly live = new Set<TestStack>();
  readonly guests = new Set<string>();
  libvirtHost: string | undefined;
  /** The hosts' PID 1s of the lab this bench brought up: another run's rebuild changes them. */
  labSig = "";

  constructor(readonly o: Options) {}

  fig(key: string, v: unknown) {
    this.figures[key] = v;
  }

  host(name: string): LabHost {
    return hostOf(name);
  }

  get quick(): boolean {
    return this.o.quick;
  }

  /** Runs one part of the bench; a failure becomes an ERROR row and the bench goes on. The lab is shared with
   * other test runs: a phase during which someone else rebuilt it (its hosts' sshd pids changed) fails. */
  async phase(name: string, fn: () => Promise<void>): Promise<boolean> {
    log(`${name} ...`);
    const t0 = Date.now();
    const rebuilt = () => this.labSig !== "" && labPids() !== this.labSig;
    try {
      await fn();
      if (rebuilt())
        throw new Error("the lab was rebuilt by another run during this phase: its figures are not valid");
      log(`${name} done in ${secs(Date.now() - t0)}`);
      return true;
    } catch (e) {
      let msg = e instanceof Error ? e.message : String(e);
      if (rebuilt() && !msg.includes("rebuilt by another run"))
        msg = `the lab was rebuilt or taken down by another run during this phase (${msg})`;
      msg = msg.split("\n").slice(0, 3).join(" | ");
      this.errors.push(`${name}: ${msg}`);
      this.rows.push({ what: name, figure: "ERROR", verdict: "ERROR", note: msg.slice(0, 200) });
      log(`${name} FAILED: ${msg}`);
      return false;
    }
  }

  /** labUp (retried while another run rebuilds it), remembering which lab is ours. */
  async labUp(hosts: number): Promise<UpResult> {
    const r = await labUpRetry(hosts);
    this.labSig = labPids();
    return r;
  }

  stack(): TestStack {
    const s = new TestStack({ cwd: this.projectDir, project: "virtnet-bench" });
    this.live.add(s);
    return s;
  }

  /** One engine run, timed from the caller's side, with the SSH logins each host accepted meanwhile. A failed
   * deployment is returned (failed > 0), not thrown. */
  async engine(label: string, hosts: string[], fn: () => Promise<RunResult>): Promise<EngineRun> {
    const mark = markLogins(hosts.map(hostOf));
    const t0 = process.hrtime.bigint();
    let result: RunResult;
    let ports: Set<number>;
    let spans: TimingSpan[];
    try {
      ({ value: result, spans } = await withTiming(async () => {
        try {
          return await fn();
        } catch (e) {
          if (!(e instanceof DeploymentError)) throw e;
          return e.result;
        }
      }));
    } finally {
      ports = mark.stop();
    }
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const run = describeRun(label, ms, result, loginsSince(mark, ports), spans);
    if (run.failed === 0 && result.errors.length) {
      run.failed = result.errors.length;
      run.errors = result.errors.map((x) => x.split("\n")[0]);
    }
    this.runs.push(run);
    return run;
  }

  /**
   * Runs `fn` (an up or a destroy) again while it fails, as a user would, at most `max` times. A failed run is
   * a virtnet failure: it is reported (and makes the exit code 1) but the bench goes on with the converged
   * figures: wall time summed over the runs it took.
   */
  async converge(label: string, hosts: string[], fn: () => Promise<RunResult>, max = 4): Promise<Converged> {
    const runs: EngineRun[] = [];
    for (let i = 0; i < max; i++) {
      const r = await this.engine(i === 0 ? label : `${label} (run ${i + 1})`, hosts, fn);
      runs.push(r);
      if (r.failed === 0) break;
    }
    const first = runs[0];
    const last = runs[runs.length - 1];
    if (first.failed > 0) {
      this.errors.push(
        `virtnet ${label}: ${first.failed} operation(s) failed in the first run (${last.failed ? "never converged" : `converged after ${runs.length} runs`}): ${first.errors[0]}`,
      );
    }
    const sum = (k: "wallMs" | "fixedMs" | "providerMs" | "virtnetMs") =>
      runs.every((r) => r[k] !== undefined) ? runs.reduce((a, r) => a + r[k]!, 0) : undefined;
    const c = {
      runs,
      first,
      wallMs: sum("wallMs")!,
      fixedMs: sum("fixedMs"),
      providerMs: sum("providerMs"),
      virtnetMs: sum("virtnetMs"),
      ok: first.failed === 0,
    };
    if (last.failed > 0) {
      if (max === 1) return { ...c, converged: false };
      throw new Error(`${label}: still failing after ${runs.length} runs: ${last.errors[0]}`);
    }
    return { ...c, converged: true };
  }

  async destroyStack(label: string, s: TestStack, hosts: string[]): Promise<Converged> {
    const r = await this.converge(label, hosts, () => s.destroy());
    if (s.state.resources.some((x) => x.custom)) throw new Error(`${label}: resources left in the state`);
    this.live.delete(s);
    return r;
  }

  async cleanup(): Promise<void> {
    for (const g of this.guests) await guestDel(g).catch(() => undefined);
    for (const s of this.live) {
      if (s.state.resources.length) await s.destroy().catch((e) => log(`cleanup destroy: ${e.message}`));
    }
    try {
      const hosts = labStatus().hosts.map((h) => h.name);
      if (this.libvirtHost && hosts.includes(this.libvirtHost)) {
        const left = await libvirtdStop(this.libvirtHost);
        if (left.length) log(`libvirt leftovers: ${left.join("; ")}`);
      }
      for (const h of hosts) await removeBenchNetworks(h);
    } catch {
      // lab not up: nothing of ours can be left in it
    }
    if (this.snapshotRoot) fs.rmSync(this.snapshotRoot, { recursive: true, force: true });
  }
}

/** What the runs did: operations of the first run (flagged when not as expected), failures and re-runs. */
function runNote(c: Converged, want: Record<string, number>): string {
  const f = c.first;
  const same =
    Object.entries(want).every(([op, n]) => (f.ops[op] ?? 0) === n) &&
    Object.keys(f.ops).every((op) => op in want);
  let note = same ? fmtOps(f.ops) : `UNEXPECTED ${fmtOps(f.ops)} (expected ${fmtOps(want)})`;
  if (!same && Object.keys(f.changed).length)
    note += ` [${Object.entries(f.changed)
      .map(([k, v]) => `${k}: ${v.join(",") || "no key"}`)
      .join("; ")}]`;
  if (!c.ok)
    note += `; first run ${secs(f.wallMs)}: ${f.failed} failed (${f.errors[0]?.replace(/^.*?: /, "").slice(0, 90)}); ${c.runs.length} runs to converge`;
  return `${note}; plugin start ${msStr(f.pluginStartMs)}`;
}

function probeStr(p: { ms: number; bytes: number } | undefined): string {
  return p ? `${msStr(p.ms)}/${(p.bytes / 1024).toFixed(1)} KiB` : "n/a";
}

function otherNote(runs: (Converged | undefined)[]): string {
  const n = runs.reduce((a, c) => a + (c?.runs.reduce((x, r) => x + r.otherLogins, 0) ?? 0), 0);
  return n ? `; ${n} more by other clients (not counted)` : "";
}

function logins(run: EngineRun | undefined): string {
  if (!run) return "n/a";
  const v = Object.values(run.logins);
  const min = Math.min(...v);
  const max = Math.max(...v);
  return min === max ? String(max) : `${min}..${max}`;
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error("the bench runs as root (namespaces, nsenter, apt-get)");
  const t0 = Date.now();
  const revision = gitRevision();
  const stamp = buildStamp();
  ensureDebianPackages(log);
  const b = new Bench(o);
  const N = o.networks;
  const m: Record<string, number | undefined> = {};
  let create20: Converged | undefined;
  let noop20: Converged | undefined;
  let refresh20: Converged | undefined;
  let update20: Converged | undefined;
  let destroy20: Converged | undefined;
  let lv: Libvirtd | undefined;

  try {
    // ---- Lab: 2 hosts up, one verified login each (from nothing; median of rounds) ----
    const labTimes: { total: number; accepting: number; login: number }[] = [];
    await b.phase("lab up", async () => {
      if (o.skip.has("lab")) {
        await b.labUp(2);
        return;
      }
      for (let i = 0; i < o.labRounds; i++) {
        const left = await labDown();
        if (left.length) throw new Error(`lab down left: ${left.join(", ")}`);
        const r = await b.labUp(2);
        if (r.reused) throw new Error("lab up reused a running lab");
        labTimes.push({ total: r.timings.total, accepting: r.timings.accepting, login: r.timings.login });
      }
      m.labUp = median(labTimes.map((t) => t.total));
      b.fig("lab", labTimes);
    });
    if (!o.skip.has("lab"))
      b.rows.push({
        what: "lab: 2 hosts up, 1 verified login each",
        figure: secs(m.labUp),
        target: "< 1 s",
        verdict: verdict(m.labUp === undefined ? undefined : m.labUp < 1000),
        note: `labUp from nothing, median of ${labTimes.length} (${labTimes.map((t) => secs(t.total)).join(", ")}); sshd accepting at ${secs(median(labTimes.map((t) => t.accepting)))}`,
      });
    const snap = snapshotProject(repoRoot());
    b.snapshotRoot = snap.root;
    b.projectDir = snap.projectDir;
    const h1 = () => hostOf("h1");

    // ---- the SSH transport: the figures its tests no longer hold as limits ----
    if (!o.skip.has("ssh")) {
      await b.phase("ssh transport", async () => {
        const t = await transportFigures(h1());
        b.fig("transport", t);
        b.rows.push({
          what: "SSH: 100 sequential execs, one connection",
          figure: secs(t.sequential100Ms),
          target: "< 3 s",
          verdict: verdict(t.sequential100Ms < 3000),
          note: `provider/host to h1; TCP_NODELAY on its socket (kernel): ${t.noDelay ? "on" : "OFF"}; connect + first exec ${msStr(t.connectMs)}, 50 parallel ${msStr(t.parallel50Ms)}`,
        });
        const fired = /could not connect within/.test(t.timeoutError);
        b.rows.push({
          what: `SSH: connect timeout ${secs(CONNECT_TIMEOUT_MS)}, unreachable`,
          figure: secs(t.timeoutFailMs),
          target: `< ${secs(CONNECT_TIMEOUT_MS + 300)}`,
          verdict: fired ? verdict(t.timeoutFailMs < CONNECT_TIMEOUT_MS + 300) : "ERROR",
          note: `from the dial to the timeout's own error${fired ? "" : ` (NOT the timeout's: ${t.timeoutError.slice(0, 100)})`}`,
        });
      });
    }

    // ---- virtnet: N NAT networks with a DhcpRange each, on h1, through the engine path ----
    await b.phase(`virtnet ${N} networks`, async () => {
      const nets = benchNets("bn20", h1(), 120, N);
      const s = b.stack();
      create20 = await b.converge("create", ["h1"], () => s.up(benchProgram(nets)));
      noop20 = await b.converge("up, no change", ["h1"], () => s.up(benchProgram(nets)));
      refresh20 = await b.converge("refresh", ["h1"], () => s.refresh());
      update20 = await b.converge("update dns record", ["h1"], () => s.up(benchProgram(nets, "db2")));
      destroy20 = await b.destroyStack("destroy", s, ["h1"]);
    });
    const rowRun = (what: string, r: Converged | undefined, note: string, want: Record<string, number>) =>
      b.rows.push({
        what,
        figure: secs(r?.wallMs),
        fixed: secs(r?.fixedMs),
        provider: secs(r?.providerMs),
        verdict: r && !r.ok ? "ERROR" : "",
        note: r ? `${note}; ${runNote(r, want)}` : note,
      });
    rowRun(`virtnet create: ${N} NAT nets + ${N} DhcpRanges`, create20, "one `up` on h1", { create: 2 * N });
    rowRun("virtnet second up, no change", noop20, "check+diff; nothing should run on the host", {
      same: 2 * N,
    });
    rowRun("virtnet refresh", refresh20, "one read (host probe) per resource", { same: 2 * N });
    rowRun(`virtnet in-place update of all ${N}`, update20, "dns.hosts record renamed: hosts file + SIGHUP", {
      update: N,
      same: N,
    });
    rowRun(
      "virtnet destroy",
      destroy20,
      `antichains as \`pulumi destroy\`: the ${N} ranges together, then the ${N} networks together`,
      {
        delete: 2 * N,
      },
    );
    const loginRuns = [create20, noop20, refresh20, update20, destroy20];
    const firstRuns = loginRuns.map((r) => r?.first);
    const loginOk =
      firstRuns.every((r) => r && Math.max(...Object.values(r.logins)) <= 1) &&
      create20?.first.logins.h1 === 1;
    b.rows.push({
      what: "SSH connections opened on h1, per run",
      figure: loginRuns.map((r) => (r ? r.runs.map(logins).join("+") : "n/a")).join(" / "),
      target: "1 per host",
      verdict: create20 ? verdict(loginOk) : "",
      note:
        'create / no change / refresh / update / destroy (+ = re-runs); sshd\'s "Accepted" lines (sshd -e -> init.log), ' +
        `attributed by client port to the plugin's sockets${otherNote(loginRuns)}`,
    });

    // ---- libvirt: the same N networks, libvirtd inside h2 ----
    if (!o.skip.has("libvirt")) {
      await b.phase(`libvirt ${N} networks`, async () => {
        b.libvirtHost = "h2";
        lv = await libvirtdStart("h2");
        m.libvirtdStart = lv.startMs;
        const nets: LibvirtNetwork[] = benchNets("bnlv", hostOf("h2"), 112, N).map((n) => ({
          name: n.name,
          bridge: n.name,
          gateway: `10.112.${n.third}.1`,
          dhcp: { start: `10.112.${n.third}.100`, end: `10.112.${n.third}.199` },
          dnsHosts: [{ ip: `10.112.${n.third}.10`, hostnames: ["db"] }],
        }));
        m.libvirtCreate = (await timed(() => defineAndStart(lv!, nets))).ms;
        const active = await libvirtNetworks(lv);
        if (active.length !== N) throw new Error(`libvirt has ${active.length} networks, expected ${N}`);
        m.libvirtDestroy = (
          await timed(() =>
            destroyAndUndefine(
              lv!,
              nets.map((n) => n.name),
            ),
          )
        ).ms;
      });
    }
    b.rows.push({
      what: `libvirt define+start ${N}`,
      figure: secs(m.libvirtCreate),
      note: `libvirtd (network driver only) in h2, one virsh process: net-define + net-start per network; libvirtd start ${msStr(m.libvirtdStart)}`,
    });
    b.rows.push({
      what: `libvirt destroy+undefine ${N}`,
      figure: secs(m.libvirtDestroy),
      note: "one virsh process: net-destroy + net-undefine per network (iptables-nft, one process per rule)",
    });

    // ---- raw floor: virtnet's own host commands via nsenter, no SSH, no Pulumi ----
    if (!o.skip.has("floor")) {
      await b.phase("raw floor", async () => {
        const fnets = benchNets("bnf", h1(), 122, N);
        const fc = await floorCreate("h1", fnets);
        const fd = await floorDestroy("h1", fnets);
        m.floorCreate = fc.applyMs;
        m.floorDestroy = fd.applyMs;
        b.fig("floor", { create: fc, destroy: fd });
        const lnets = benchNets("bnl", h1(), 123, N);
        const lc = await lifecycleCreate("h1", lnets);
        const ld = await lifecycleDestroy("h1", lnets);
        m.lifeCreate = lc.wallMs;
        m.lifeDestroy = ld.wallMs;
        const sum = (ms: Record<string, number>) => Object.values(ms).reduce((x, y) => x + y, 0);
        m.ownCreate = sum(lc.ms);
        m.ownDestroy = sum(ld.ms);
        b.fig("lifecycle", { create: lc, destroy: ld });
        const apply = lc.counts.apply ?? 0;
        m.lifeRetries = apply - 2 * N;
        if (lc.errors.length)
          b.errors.push(`virtnet lifecycle via nsenter: ${lc.errors.length} of ${N} failed: ${lc.errors[0]}`);
        b.rows.push({
          what: `one script per network: create ${N}`,
          figure: secs(fc.applyMs),
          note: `${fc.scripts} apply scripts (${fc.actions} actions) from provider/plan/ for the host as probed, net+range in one plan, run via nsenter one after another; probes not timed (${secs(fc.probeMs)}; one probe ${probeStr(fc.probes[0])} on the empty host, ${probeStr(fc.probes[fc.probes.length - 1])} with ${N - 1} networks)`,
        });
        b.rows.push({
          what: `one script per network: destroy ${N}`,
          figure: secs(fd.applyMs),
          note: `${fd.scripts} planDelete scripts via nsenter`,
        });
        b.rows.push({
          what: `virtnet lifecycle via nsenter, create ${N}`,
          figure: secs(lc.wallMs),
          verdict: lc.errors.length ? "ERROR" : "",
          note:
            `applyNetwork+applyRange for all at once, no SSH/Pulumi: ${lc.counts["probe host"] ?? 0} probes, ${apply} apply runs for ${2 * N} changes; ` +
            `the raw floor, these host commands alone: ${secs(m.ownCreate)} (probes ${secs(lc.ms["probe host"])}, apply scripts ${secs(lc.ms.apply)})` +
            (lc.errors.length
              ? `; ${lc.errors.length} networks FAILED (${lc.errors[0].replace(/^.*?: /, "").slice(0, 80)}), redone one by one in ${secs(lc.redoMs)}`
              : ""),
        });
        b.rows.push({
          what: `virtnet lifecycle via nsenter, destroy ${N}`,
          figure: secs(ld.wallMs),
          note: `all deleteRange at once, then all deleteNetwork at once (the engine's antichains): ${ld.counts["probe host"] ?? 0} probes, ${ld.counts.apply ?? 0} apply runs; these host commands alone: ${secs(m.ownDestroy)} (probes ${secs(ld.ms["probe host"])}, apply scripts ${secs(ld.ms.apply)})`,
        });
      });
    }

    // ---- the physical limit: the kernel's and dnsmasq's work alone, for the same networks ----
    if (!o.skip.has("physical")) {
      await b.phase("physical limit", async () => {
        const pnets = benchNets("bnp", h1(), 124, N);
        try {
          const pc = await physicalCreate("h1", pnets);
          const pd = await physicalDestroy("h1");
          m.physicalCreate = pc.ms;
          m.physicalDestroy = pd.ms;
          b.fig("physical", { create: pc, destroy: pd });
          const parts = (r: PhysicalResult) =>
            `bridges ${msStr(r.steps.bridges)}, nft ${msStr(r.steps.nft)}, dnsmasqs ${msStr(r.steps.dnsmasq)}`;
          b.rows.push({
            what: `physical limit: create ${N}`,
            figure: secs(pc.ms),
            note: `the kernel and dnsmasq alone, in h1 via nsenter: ${N} bridges in one ip -batch, all their rules in one nft -f, ${N} dnsmasqs started side by side (${parts(pc)})`,
          });
          b.rows.push({
            what: `physical limit: destroy ${N}`,
            figure: secs(pd.ms),
            note: `${N} dnsmasqs signalled, meanwhile the bridges in one ip link del group and the table in one nft command; done once all are gone (each part's end, from the start: ${parts(pd)})`,
          });
        } finally {
          await physicalCleanup("h1", pnets);
        }
      });
    }

    // ---- ratios: the provider's part and the whole run, against libvirt, the floor, the physical limit ----
    const ratioRow = (
      what: string,
      a: number | undefined,
      by: number | undefined,
      note: string,
      limit?: number,
    ) => {
      const r = a !== undefined && by ? a / by : undefined;
      b.rows.push({
        what,
        figure: `${secs(a)} / ${secs(by)}`,
        target: limit === undefined ? undefined : `<= ${limit}x`,
        ratio: ratioStr(r),
        verdict: limit === undefined ? "" : verdict(r === undefined ? undefined : r <= limit),
        note,
      });
    };
    const pc = create20?.providerMs;
    const pd = destroy20?.providerMs;
    const same = `${N} NAT networks with DHCP, same run, same kind of host`;
    ratioRow(
      "create: provider / libvirt",
      pc,
      m.libvirtCreate,
      `${same}; provider: first Create request to last response`,
      0.5,
    );
    ratioRow(
      "create: provider / raw floor",
      pc,
      m.ownCreate,
      "the provider over SSH vs its own host commands via nsenter (provider/orchestration's probes and apply scripts, each from spawn to exit, summed)",
      1.5,
    );
    ratioRow(
      "create: raw floor / physical limit",
      m.ownCreate,
      m.physicalCreate,
      "virtnet's host commands vs the kernel's and dnsmasq's work alone for the same networks",
      3,
    );
    ratioRow(
      "destroy: provider / libvirt",
      pd,
      m.libvirtDestroy,
      `${same}; provider: first Delete request to last response`,
      0.2,
    );
    const own =
      "no target: the union of virtnet's SSH dials and rounds (each from its wait for the requests arriving together to its last result), recorded by the provider (provider/timing.ts) inside the provider's window; the rest of the window is the dynamic provider decoding requests and encoding results, and the engine and the program between the rounds";
    ratioRow("create: virtnet's own time / provider", create20?.virtnetMs, pc, own);
    ratioRow(
      "create: virtnet's own time / raw floor",
      create20?.virtnetMs,
      m.ownCreate,
      "no target: the provider's part without Pulumi's share of its window, against the same host commands via nsenter (the floor has a probe per round; the provider reads the ranges' round's ahead, while the engine registers the ranges)",
    );
    ratioRow("destroy: virtnet's own time / provider", destroy20?.virtnetMs, pd, own);
    ratioRow(
      "destroy: raw floor / physical limit",
      m.ownDestroy,
      m.physicalDestroy,
      "no target: virtnet's host commands of the destroy (the ranges' round, then the networks') vs the kernel's and dnsmasq's work alone",
    );
    ratioRow(
      "create: whole run / libvirt",
      create20?.wallMs,
      m.libvirtCreate,
      `no target: with Pulumi's fixed part (${secs(create20?.fixedMs)} of it: the program to its first resource + the plugin's start), which virtnet cannot change`,
    );
    ratioRow(
      "destroy: whole run / libvirt",
      destroy20?.wallMs,
      m.libvirtDestroy,
      `no target: with Pulumi's fixed part (${secs(destroy20?.fixedMs)} of it)`,
    );
    ratioRow(
      "create: provider / one script per network",
      pc,
      m.floorCreate,
      "stricter, no target: network and range in one plan each, no probes",
    );

    // ---- first lease: network created -> guest has a lease ----
    if (!o.skip.has("lease")) {
      await b.phase("first lease, virtnet", async () => {
        const [n] = benchNets("bnlease", h1(), 110, 1);
        const s = b.stack();
        const up = await b.converge("lease net create", ["h1"], () => s.up(benchProgram([n])));
        const t = await timed(async () => {
          b.guests.add("bnvg");
          await guestAdd("bnvg", "h1", bridgeOf(n));
          return guestDhcp("bnvg", { timeoutMs: 20_000 });
        });
        if (!t.value.ip.startsWith("10.110.0.")) throw new Error(`unexpected lease ${t.value.ip}`);
        m.leaseVirtnet = t.ms;
        m.leaseVirtnetUp = up.wallMs;
        await guestDel("bnvg");
        b.guests.delete("bnvg");
        await b.destroyStack("lease net destroy", s, ["h1"]);
      });
      if (!o.skip.has("libvirt")) {
        await b.phase("first lease, libvirt", async () => {
          if (!lv) throw new Error("libvirtd is not running (libvirt phase failed)");
          const net: LibvirtNetwork = {
            name: "bnlvlease",
            bridge: "bnlvlease",
            gateway: "10.111.0.1",
            dhcp: { start: "10.111.0.100", end: "10.111.0.199" },
          };
          m.leaseLibvirtCreate = (await timed(() => defineAndStart(lv!, [net]))).ms;
          const t = await timed(async () => {
            b.guests.add("bnlg");
            await guestAdd("bnlg", "h2", net.bridge);
            return guestDhcp("bnlg", { timeoutMs: 20_000 });
          });
          if (!t.value.ip.startsWith("10.111.0.")) throw new Error(`unexpected lease ${t.value.ip}`);
          m.leaseLibvirt = t.ms;
          await guestDel("bnlg");
          b.guests.delete("bnlg");
          await destroyAndUndefine(lv, [net.name]);
        });
      }
    }
    if (b.libvirtHost) {
      await b.phase("libvirt cleanup", async () => {
        const left = await libvirtdStop(b.libvirtHost!);
        if (left.length) throw new Error(`libvirt cleanup: ${left.join("; ")}`);
        b.libvirtHost = undefined;
      });
    }
    b.rows.push({
      what: "first lease, virtnet",
      figure: secs(m.leaseVirtnet),
      target: "< 0.5 s",
      verdict: verdict(m.leaseVirtnet === undefined ? undefined : m.leaseVirtnet < 500),
      note: `from \`up\` returning (it took ${secs(m.leaseVirtnetUp)}) to the lease: guest veth onto the bridge + busybox udhcpc; STP off, dnsmasq no-ping`,
    });
    b.rows.push({
      what: "first lease, libvirt",
      figure: secs(m.leaseLibvirt),
      ratio: m.leaseVirtnet && m.leaseLibvirt ? ratioStr(m.leaseVirtnet / m.leaseLibvirt) : undefined,
      note: `from net-start returning (define+start ${msStr(m.leaseLibvirtCreate)}): libvirt defaults, STP on (2 s forward delay x2) + dnsmasq ping check; ratio virtnet/libvirt`,
    });

    // ---- rows other features add (more.ts), on the 2-host lab ----
    for (const more of MORE_ROWS) {
      if (o.skip.has("more") || o.skip.has(more.skip)) continue;
      const measure = more.measure;
      if (!measure) b.rows.push({ what: more.what, figure: "n/a", note: `not measured yet: ${more.from}` });
      else await b.phase(more.what, async () => void b.rows.push(...(await measure(b))));
    }

    // ---- scaling: S networks on one host ----
    let scale: Converged | undefined;
    if (!o.skip.has("scale")) {
      await b.phase(`scale: ${o.scale} networks on h1`, async () => {
        const nets = benchNets("bns", h1(), 121, o.scale);
        const s = b.stack();
        // One run only: at this size a failing run takes minutes; the row reports what that run did.
        scale = await b.converge(`create ${o.scale}`, ["h1"], () => s.up(benchProgram(nets)), 1);
        if (scale.converged) m.scaleCreate = scale.providerMs;
        const dr = await b.destroyStack(`destroy ${o.scale}`, s, ["h1"]);
        m.scaleDestroy = dr.wallMs;
      });
    }
    // Per network, the provider's part (the whole run's fixed part would weigh 10 times more at 20).
    const per20 = create20?.providerMs ? create20.providerMs / N : undefined;
    const perS = m.scaleCreate ? m.scaleCreate / o.scale : undefined;
    const rScale = per20 && perS ? perS / per20 : undefined;
    b.rows.push({
      what: `per-network create at ${o.scale} vs at ${N}`,
      figure: `${msStr(perS)} / ${msStr(per20)}`,
      target: "<= 1.2x",
      ratio: ratioStr(rScale),
      verdict:
        scale && !scale.converged ? "ERROR" : verdict(rScale === undefined ? undefined : rScale <= 1.2),
      note: !scale
        ? "not measured"
        : scale.converged
          ? `provider's part; ${o.scale} nets+ranges on h1: provider ${secs(m.scaleCreate)} (virtnet's own time ${secs(scale.virtnetMs)}, at ${N}: ${secs(create20?.virtnetMs)}), whole run ${secs(scale.wallMs)} (per network ${ratioStr(scale.wallMs / o.scale / ((create20?.wallMs ?? NaN) / N))} of the ${N}-network run's, Pulumi's fixed part included); ${runNote(scale, { create: 2 * o.scale })}; SSH logins ${scale.runs.map(logins).join("+")}; destroy ${secs(m.scaleDestroy)}`
          : `one \`up\` of ${o.scale} nets+ranges (not re-run: too slow): ${secs(scale.first.wallMs)}, ${scale.first.failed} failed (${scale.first.errors[0]?.replace(/^.*?: /, "").slice(0, 90)}); ${fmtOps(scale.first.ops)}; SSH logins ${logins(scale.first)}; destroy of what it made ${secs(m.scaleDestroy)}`,
    });

    // ---- multi-host: H hosts x P networks vs 1 host x P ----
    if (!o.skip.has("multihost")) {
      await b.phase(`multi-host: ${o.hosts} x ${o.perHost}`, async () => {
        const up = await b.labUp(o.hosts);
        m.labUpMany = up.timings.total;
        const names = labStatus().hosts.map((h) => h.name);
        const one = benchNets("bnm1", hostOf("h1"), 130, o.perHost);
        const s1 = b.stack();
        const r1 = await b.converge(`create 1x${o.perHost}`, ["h1"], () => s1.up(benchProgram(one)));
        m.oneHost = r1.wallMs;
        await b.destroyStack(`destroy 1x${o.perHost}`, s1, ["h1"]);
        const many: BenchNet[] = names.flatMap((h, k) =>
          benchNets(`bnm${k + 1}`, hostOf(h), 131 + k, o.perHost),
        );
        const s2 = b.stack();
        const r2 = await b.converge(`create ${o.hosts}x${o.perHost}`, names, () => s2.up(benchProgram(many)));
        m.manyHosts = r2.wallMs;
        b.fig("manyHostLogins", r2.first.logins);
        const dr = await b.destroyStack(`destroy ${o.hosts}x${o.perHost}`, s2, names);
        m.manyDestroy = dr.wallMs;
        // The same networks' host commands alone (provider/orchestration/ via nsenter: no SSH, no Pulumi), H hosts at once
        // vs one: what this machine allows, since every lab host shares its cores.
        const floorOne = benchNets("bnf1", hostOf("h1"), 130, o.perHost);
        const lc1 = await lifecycleCreate("h1", floorOne);
        await lifecycleDestroy("h1", floorOne);
        const floorMany = names.map((h, k) => benchNets(`bnf${k + 1}`, hostOf(h), 131 + k, o.perHost));
        const t1 = Date.now();
        const lcMany = await Promise.all(names.map((h, k) => lifecycleCreate(h, floorMany[k])));
        const manyFloor = (m.manyFloor = Date.now() - t1);
        const oneFloor = (m.oneFloor = lc1.wallMs);
        await Promise.all(names.map((h, k) => lifecycleDestroy(h, floorMany[k])));
        const floorErrors = [lc1, ...lcMany].flatMap((r) => r.errors);
        if (floorErrors.length) b.errors.push(`multi-host floor: ${floorErrors.join("; ")}`);
        const ratio = m.manyHosts / m.oneHost;
        const floorRatio = manyFloor / oneFloor;
        b.rows.push({
          what: `${o.hosts} hosts x ${o.perHost} vs 1 host, host commands alone`,
          figure: `${secs(manyFloor)} / ${secs(oneFloor)}`,
          ratio: ratioStr(floorRatio),
          note: `the next row's networks via provider/orchestration/ over nsenter (no SSH, no Pulumi), all hosts at once vs h1 alone: the ratio this ${require("node:os").cpus().length}-core machine allows, its lab hosts sharing the cores`,
        });
        b.rows.push({
          what: `${o.hosts} hosts x ${o.perHost} vs 1 host x ${o.perHost}`,
          figure: `${secs(m.manyHosts)} / ${secs(m.oneHost)}`,
          fixed: `${secs(r2.fixedMs)} / ${secs(r1.fixedMs)}`,
          provider: `${secs(r2.providerMs)} / ${secs(r1.providerMs)}`,
          target: `<= ${ratioStr(floorRatio)}`,
          ratio: ratioStr(ratio),
          verdict: verdict(ratio <= floorRatio),
          note: `whole runs; target: growing no faster than the host commands alone on the same hosts (the row above); provider's part ${ratioStr((r2.providerMs ?? NaN) / (r1.providerMs ?? NaN))}; one \`up\` each (nets+ranges); ${o.hosts}-host up: ${runNote(r2, { create: 2 * o.hosts * o.perHost })}, SSH logins per host ${r2.runs.map(logins).join("+")}; 1-host up: ${runNote(r1, { create: 2 * o.perHost })}; ${o.hosts}-host destroy ${secs(m.manyDestroy)}; lab up with ${o.hosts} hosts ${secs(m.labUpMany)}`,
        });
      });
    }
    // ---- on the multi-host row's lab: one more member for a network stretched over all but one host ----
    if (!o.skip.has("multihost") && !o.skip.has("stretch"))
      await b.phase("add 1 NetworkExtension", async () => {
        b.rows.push(await addExtensionRow(b, labStatus().hosts));
      });
  } finally {
    await b.cleanup();
    if (!o.keepLab) {
      const left = await labDown().catch((e) => [String(e)]);
      if (left.length) b.errors.push(`lab down left: ${left.join(", ")}`);
    }
  }

  // The plugin ran a copy of the build taken at the start; the bench's own process (the program's
  // registrations, the floor rows) loaded dist/ directly, also at the start.
  const rebuilt =
    buildStamp() !== stamp ? " (dist/ was rebuilt by another session meanwhile; the plugin used a copy)" : "";
  const mode = o.quick ? " (--quick)" : "";
  console.log(
    `\nvirtnet bench${mode}: ${new Date().toISOString()}, git ${revision}${rebuilt}, ${labTimesLine()}, total ${secs(Date.now() - t0)}\n`,
  );
  console.log(renderTable(b.rows));
  console.log("\nengine runs (timing.rpc of the plugin; wall time seen by the caller):");
  for (const r of b.runs)
    console.log(
      `  ${r.label.padEnd(20)} ${secs(r.wallMs).padStart(8)}  before the plugin ${msStr(r.beforePluginMs)}; plugin start ${msStr(r.pluginStartMs)}; ${fmtRpc(r.rpc)}`,
    );
  if (b.errors.length) {
    console.log("\nerrors:");
    for (const e of b.errors) console.log(`  ${e}`);
  }
  if (o.json)
    fs.writeFileSync(
      o.json,
      JSON.stringify(
        { options: { ...o, skip: [...o.skip] }, m, figures: b.figures, runs: b.runs, rows: b.rows },
        null,
        2,
      ),
    );
  return b.errors.length ? 1 : 0;
}

function labTimesLine(): string {
  return `node ${process.version}, ${require("node:os").cpus().length} cores`;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e instanceof Error ? e.stack : e);
    process.exit(1);
  },
);
