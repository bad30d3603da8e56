// virtnet through the engine path: the bench's programs (NAT networks, each with a DhcpRange), connection
// counting on the host side, and summaries of the engine's per-call timings.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DhcpRange, VirtualNetwork } from "../../sdk";
import { CallStat } from "../engine/plugin";
import { changedKeys, RefreshResult, RunResult } from "../engine/engine";
import { LabHost, STATE_DIR as LAB_STATE_DIR } from "../lab/lab";
import { TIMING_FILE_ENV, TimingSpan } from "../../provider/timing";

/**
 * A Pulumi project dir whose node_modules/pulumi-virtnet is a COPY of the built provider and SDK taken now
 * (dist/provider, dist/sdk, package.json; its node_modules links to the repo's). The plugin loads the
 * provider afresh in every engine run, from there: another session rebuilding dist/ during the bench cannot
 * mix two builds into one table. Returns the project dir; remove `root` afterwards.
 */
export function snapshotProject(repo: string): { root: string; projectDir: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "virtnet-bench-"));
  const pkg = path.join(root, "pkg");
  for (const d of ["provider", "sdk"])
    fs.cpSync(path.join(repo, "dist", d), path.join(pkg, "dist", d), { recursive: true });
  fs.copyFileSync(path.join(repo, "package.json"), path.join(pkg, "package.json"));
  fs.symlinkSync(path.join(repo, "node_modules"), path.join(pkg, "node_modules"), "dir");
  const projectDir = path.join(root, "project");
  fs.mkdirSync(path.join(projectDir, "node_modules", "@pulumi"), { recursive: true });
  fs.rmdirSync(path.join(projectDir, "node_modules", "@pulumi"));
  fs.writeFileSync(path.join(projectDir, "Pulumi.yaml"), "name: virtnet-bench\nruntime: nodejs\n");
  fs.symlinkSync(pkg, path.join(projectDir, "node_modules", "pulumi-virtnet"), "dir");
  fs.symlinkSync(
    path.join(repo, "node_modules", "@pulumi"),
    path.join(projectDir, "node_modules", "@pulumi"),
    "dir",
  );
  return { root, projectDir };
}

/** One bench network: name (starts "bn"), host, and its /24 `10.<second>.<third>.0/24`. */
export interface BenchNet {
  name: string;
  host: LabHost;
  second: number;
  third: number;
}

export function subnetBase(n: Pick<BenchNet, "second" | "third">): string {
  return `10.${n.second}.${n.third}`;
}

/** `count` networks named `<prefix>-<i>` on `host`, subnets 10.<second>.<i>.0/24 (second in 100..199). */
export function benchNets(prefix: string, host: LabHost, second: number, count: number): BenchNet[] {
  if (!prefix.startsWith("bn")) throw new Error(`bench network names start with "bn": ${prefix}`);
  if (second < 100 || second > 199 || count > 256)
    throw new Error(`bad subnet plan 10.${second}.0-${count - 1}`);
  return Array.from({ length: count }, (_, i) => ({
    name: `${prefix}-${String(i).padStart(count > 100 ? 3 : 2, "0")}`,
    host,
    second,
    third: i,
  }));
}

/** The connection argument as a user writes it (private key in clear: the SDK keeps it secret). */
export function connectionFor(h: LabHost) {
  return { host: h.address, hostKey: h.hostKey, privateKey: fs.readFileSync(h.privateKeyPath, "utf8") };
}

/**
 * A program with one NAT VirtualNetwork and one DhcpRange per bench network. `dnsName` is the name of the
 * network's static DNS host record (dns.hosts): changing it is an in-place update (hosts file + SIGHUP).
 */
export function benchProgram(nets: BenchNet[], dnsName = "db") {
  const connections = new Map<string, ReturnType<typeof connectionFor>>();
  const conn = (h: LabHost) => {
    if (!connections.has(h.name)) connections.set(h.name, connectionFor(h));
    return connections.get(h.name)!;
  };
  return async () => {
    for (const n of nets) {
      const base = subnetBase(n);
      const net = new VirtualNetwork(n.name, {
        connection: conn(n.host),
        mode: "nat",
        ipv4: { cidr: `${base}.0/24` },
        dns: { hosts: [{ ip: `${base}.10`, hostnames: [dnsName] }] },
      });
      new DhcpRange(`${n.name}-dhcp`, { network: net, start: `${base}.100`, end: `${base}.199` });
    }
    return {};
  };
}

export function bridgeOf(n: Pick<BenchNet, "name">): string {
  const plain = `vn-${n.name}`;
  if (plain.length > 15) throw new Error(`bench network name too long for a plain bridge name: ${n.name}`);
  return plain;
}

/**
 * SSH connections counted on the host side. Each lab host's sshd runs with -e, so its log is the host's
 * init.log; at its default LogLevel INFO it writes one "Accepted <method> for <user> from <addr> port <port>
 * ssh2" line per authenticated connection (a virtnet connection authenticates exactly once). The lab is shared
 * with other test runs, so the lines are attributed by client port: while a run goes, the root namespace's
 * TCP table is read whenever a lab sshd's log grows, and every established socket to a lab sshd that belongs
 * to this process or one of its descendants (the provider plugin) is recorded. Lines whose port was not seen
 * are counted as other clients'.
 */
export interface LoginMark {
  offsets: Record<string, number>;
  stop: () => Set<number>;
}

function initLog(host: string): string {
  return path.join(LAB_STATE_DIR, "hosts", host, "init.log");
}

function hexAddr(ip: string): string {
  return ip
    .split(".")
    .map((o) => Number(o).toString(16).padStart(2, "0"))
    .reverse()
    .join("")
    .toUpperCase();
}

function descendants(root: number): number[] {
  const kids = new Map<number, number[]>();
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(st.slice(st.lastIndexOf(")") + 2).split(" ")[1]);
      kids.set(ppid, [...(kids.get(ppid) ?? []), Number(d)]);
    } catch {
      // gone
    }
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length) {
    const p = todo.pop()!;
    out.push(p);
    todo.push(...(kids.get(p) ?? []));
  }
  return out;
}

function socketInodesOf(pids: number[]): Set<string> {
  const inodes = new Set<string>();
  for (const p of pids) {
    let fds: string[] = [];
    try {
      fds = fs.readdirSync(`/proc/${p}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${p}/fd/${fd}`));
        if (m) inodes.add(m[1]);
      } catch {
        // closed meanwhile
      }
    }
  }
  return inodes;
}

/** Starts watching: returns the log offsets now and a stop() giving the client ports of this process tree. */
export function markLogins(hosts: LabHost[]): LoginMark {
  const offsets = Object.fromEntries(hosts.map((h) => [h.name, fs.statSync(initLog(h.name)).size]));
  const targets = new Set(hosts.map((h) => `${hexAddr(h.address)}:0016`));
  const seen = new Map<string, boolean>(); // inode -> ours
  const ports = new Set<number>();
  const poll = () => {
    let table = "";
    try {
      table = fs.readFileSync("/proc/net/tcp", "utf8");
    } catch {
      return;
    }
    const fresh: { inode: string; port: number }[] = [];
    for (const line of table.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== "01" || !targets.has(f[2])) continue;
      const inode = f[9];
      const port = parseInt(f[1].split(":")[1], 16);
      if (seen.get(inode)) ports.add(port);
      else if (!seen.has(inode)) fresh.push({ inode, port });
    }
    if (fresh.length === 0) return;
    const ours = socketInodesOf(descendants(process.pid));
    for (const s of fresh) {
      seen.set(s.inode, ours.has(s.inode));
      if (ours.has(s.inode)) ports.add(s.port);
    }
  };
  // Reading /proc/net/tcp walks the kernel's whole socket hash (~3 ms here, however few sockets): sampling it
  // every 25 ms took a seventh of a core from the runs it measured. It is read when an sshd log grows (an
  // "Accepted" line: the connection is up), found by inotify, or by a size check every 200 ms.
  let sizes = "";
  const pollIfLogged = () => {
    const now = hosts.map((h) => fs.statSync(initLog(h.name)).size).join(",");
    if (now === sizes) return;
    sizes = now;
    poll();
  };
  const watchers = hosts.map((h) => fs.watch(initLog(h.name), pollIfLogged));
  const timer = setInterval(pollIfLogged, 200);
  poll();
  return {
    offsets,
    stop: () => {
      poll();
      clearInterval(timer);
      for (const w of watchers) w.close();
      return ports;
    },
  };
}

/** Logins accepted since the mark, per host: this process tree's, and other clients'. */
export function loginsSince(
  mark: LoginMark,
  ports: Set<number>,
): { ours: Record<string, number>; others: number } {
  const ours: Record<string, number> = {};
  let others = 0;
  for (const [host, off] of Object.entries(mark.offsets)) {
    const text = fs.readFileSync(initLog(host)).subarray(off).toString("utf8");
    ours[host] = 0;
    for (const line of text.split("\n")) {
      const m = /^Accepted \S+ for \S+ from \S+ port (\d+) /.exec(line);
      if (!m) continue;
      if (ports.has(Number(m[1]))) ours[host]++;
      else others++;
    }
  }
  return { ours, others };
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

export interface RpcSummary {
  method: string;
  n: number;
  medianMs: number;
  p90Ms: number;
  maxMs: number;
  sumMs: number;
}

/** Per-method counts and latencies of the plugin's gRPC calls in one engine run (`timing.rpc`). */
export function summarizeRpc(calls: CallStat[]): RpcSummary[] {
  const by = new Map<string, number[]>();
  for (const c of calls) by.set(c.method, [...(by.get(c.method) ?? []), c.ms]);
  return [...by].map(([method, ms]) => ({
    method,
    n: ms.length,
    medianMs: median(ms),
    p90Ms: percentile(ms, 90),
    maxMs: Math.max(...ms),
    sumMs: ms.reduce((a, b) => a + b, 0),
  }));
}

export interface EngineRun {
  label: string;
  wallMs: number;
  pluginStartMs?: number;
  beforePluginMs?: number;
  /** Pulumi's fixed part, which virtnet has no say in: the program up to its first resource + the plugin's start. */
  fixedMs?: number;
  /** The provider's part: from the plugin's first create/update/delete request to its last response (a refresh:
   * its reads). */
  providerMs?: number;
  /** virtnet's own time in that window (virtnetBusyMs); the rest is the dynamic provider's and the engine's. */
  virtnetMs?: number;
  /** Operations on dynamic resources by kind ("create", "same", ...), failed ones included. */
  ops: Record<string, number>;
  /** Per "<Type> <op>" of updates: the keys that differed (diff's changed input keys; for a refresh, the
   * output keys and "inputs.<key>" read back differently). Evidence for unexpected updates. */
  changed: Record<string, string[]>;
  /** Operations that failed, and the first few error messages. */
  failed: number;
  errors: string[];
  rpc: RpcSummary[];
  logins: Record<string, number>;
  /** Logins on the same hosts meanwhile by clients outside this process tree (other test runs). */
  otherLogins: number;
}

export function describeRun(
  label: string,
  wallMs: number,
  r: RunResult,
  logins: { ours: Record<string, number>; others: number },
  spans: TimingSpan[] = [],
): EngineRun {
  const ops: Record<string, number> = {};
  const errors: string[] = [];
  const changed: Record<string, Set<string>> = {};
  const note = (type: string, op: string, keys: string[]) => {
    const k = `${type.split(":").pop()} ${op}`;
    changed[k] ??= new Set();
    keys.forEach((x) => changed[k].add(x));
  };
  for (const o of r.operations) {
    if (!o.dynamic) continue;
    ops[o.op] = (ops[o.op] ?? 0) + 1;
    if (o.error) errors.push(`${o.name}: ${o.error.split("\n")[0]}`);
    if ((o.op === "update" || o.op === "replace") && o.diff) note(o.type, o.op, o.diff.changedKeys);
  }
  for (const c of (r as RefreshResult).changes ?? []) {
    if (c.op !== "update") continue;
    const type = c.urn.split("::")[2]?.split("$").pop() ?? "?";
    const inputKeys =
      c.inputsBefore && c.inputsAfter
        ? changedKeys(c.inputsBefore, c.inputsAfter).map((k) => `inputs.${k}`)
        : [];
    note(type, "refresh-update", [...c.changedKeys, ...inputKeys]);
  }
  const fixed = [r.timing.beforePluginMs, r.timing.pluginStartMs];
  return {
    label,
    wallMs,
    pluginStartMs: r.timing.pluginStartMs,
    beforePluginMs: r.timing.beforePluginMs,
    fixedMs: fixed.every((x) => x !== undefined) ? fixed[0]! + fixed[1]! : undefined,
    providerMs: providerWindowMs(r.timing.rpc),
    virtnetMs: virtnetBusyMs(r.timing.rpc, spans),
    ops,
    failed: errors.length,
    errors,
    changed: Object.fromEntries(Object.entries(changed).map(([k, v]) => [k, [...v].sort()])),
    rpc: summarizeRpc(r.timing.rpc),
    logins: logins.ours,
    otherLogins: logins.others,
  };
}

/**
 * Runs `fn` (an engine run, whose plugin inherits this process's environment) with virtnet's timing on
 * (provider/timing.ts), and returns what it returned with the spans virtnet recorded meanwhile.
 */
export async function withTiming<T>(fn: () => Promise<T>): Promise<{ value: T; spans: TimingSpan[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "virtnet-timing-"));
  const file = path.join(dir, "spans.jsonl");
  const before = process.env[TIMING_FILE_ENV];
  process.env[TIMING_FILE_ENV] = file;
  try {
    const value = await fn();
    const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
    const spans = text
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as TimingSpan);
    return { value, spans };
  } finally {
    if (before === undefined) delete process.env[TIMING_FILE_ENV];
    else process.env[TIMING_FILE_ENV] = before;
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The calls the provider's window spans: creates, updates and deletes (none: the reads of a refresh). */
function windowCalls(calls: CallStat[]): CallStat[] {
  const changes = calls.filter((c) => ["create", "update", "delete"].includes(c.method));
  return changes.length ? changes : calls.filter((c) => c.method === "read");
}

/** From the first create/update/delete request to the last response (none: the reads of a refresh). */
export function providerWindowMs(calls: CallStat[]): number | undefined {
  const window = windowCalls(calls);
  if (window.length === 0) return undefined;
  return Math.max(...window.map((c) => c.end)) - Math.min(...window.map((c) => c.start));
}

/**
 * virtnet's own time in the provider's window: the union of the spans it recorded (SSH dials; rounds and
 * shared reads, each from its wait for arrivals to its last result), cut to the window. The calls' times are
 * on this process's performance.now(), the spans on the Unix epoch.
 */
export function virtnetBusyMs(calls: CallStat[], spans: TimingSpan[]): number | undefined {
  const window = windowCalls(calls);
  if (window.length === 0) return undefined;
  const from = performance.timeOrigin + Math.min(...window.map((c) => c.start));
  const to = performance.timeOrigin + Math.max(...window.map((c) => c.end));
  const cut = spans
    .map((s) => [Math.max(s.start, from), Math.min(s.end, to)])
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  let busy = 0;
  let reached = from;
  for (const [a, b] of cut) {
    busy += Math.max(0, b - Math.max(a, reached));
    reached = Math.max(reached, b);
  }
  return busy;
}

export function fmtOps(ops: Record<string, number>): string {
  return Object.entries(ops)
    .map(([k, v]) => `${v} ${k}`)
    .join(", ");
}

export function fmtRpc(rpc: RpcSummary[]): string {
  return rpc
    .filter((r) => r.method !== "configure")
    .map(
      (r) =>
        `${r.method} n=${r.n} median ${r.medianMs.toFixed(0)} ms p90 ${r.p90Ms.toFixed(0)} max ${r.maxMs.toFixed(0)}`,
    )
    .join("; ");
}
