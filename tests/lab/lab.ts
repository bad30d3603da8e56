// The virtnet test lab: real Linux "hosts" on this machine, each a set of namespaces running its own sshd,
// with a management bridge in the root namespace, an "upstream" namespace playing the internet, and bare
// "guest" namespaces attached to bridges inside the hosts. Every piece is named with LAB_PREFIX so that
// `labDown()` finds it even after a killed run. Nothing here sends a packet outside the lab's namespaces:
// the root namespace gets an nft guard table while the lab is up.
//
// Address plan (see README of tests/lab in the CLI's `help`):
//   management  198.18.0.0/24: root bridge vnl-mgmt 198.18.0.1, host i mgmt0 198.18.0.(10+i), sshd :22
//   uplink      198.19.0.0/24: upstream bridge br0 198.19.0.1, host i eth0 198.19.0.(10+i), default route
//   server      198.51.100.1/32 on upstream's lo; upstream forwards nothing, has no route to guests
//   uplink 2    (labUp({ uplinks: 2 })) 198.19.1.0/24: a second upstream vnl-up2 with bridge br0 198.19.1.1,
//               host i eth1 198.19.1.(10+i), a route to its server 198.51.100.2/32 (on vnl-up2's lo) via eth1
import { spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { Client as SshClient } from "ssh2";

// ---------------------------------------------------------------------------------------------------------
// Names and the address plan

export const LAB_PREFIX = "vnl-";
/** Root-owned state dir (not under /tmp: sshd's StrictModes). Holds keys, host upper dirs, leases. */
export const STATE_DIR = "/run/virtnet-lab";
export const MGMT_BRIDGE = "vnl-mgmt";
export const MGMT_GATEWAY = "198.18.0.1";
export const MGMT_PREFIX_LEN = 24;
export const MGMT_SUBNET = "198.18.0.0/24";
export const UPSTREAM_NAMESPACE = "vnl-up";
export const UPSTREAM_BRIDGE = "br0";
export const UPSTREAM_ADDRESS = "198.19.0.1";
export const UPLINK_PREFIX_LEN = 24;
export const UPLINK_SUBNET = "198.19.0.0/24";
export const SERVER_ADDRESS = "198.51.100.1";
/** The second upstream segment, for hosts with two uplinks: only the route to its server goes there. */
export const UPSTREAM2_NAMESPACE = "vnl-up2";
export const UPSTREAM2_ADDRESS = "198.19.1.1";
export const UPLINK2_SUBNET = "198.19.1.0/24";
export const SERVER2_ADDRESS = "198.51.100.2";
/** IPv6 on the uplink side (documentation prefix 2001:db8::/32); the root namespace drops all lab IPv6. */
export const UPSTREAM_ADDRESS6 = "2001:db8:ff::1";
export const SERVER_ADDRESS6 = "2001:db8:51::1";
/** Interface names inside every host. */
export const HOST_MGMT_IF = "mgmt0";
export const HOST_UPLINK_IF = "eth0";
export const HOST_UPLINK2_IF = "eth1";
/** Interface name of a guest's end inside its own namespace. */
export const GUEST_IF = "eth0";
export const NFT_TABLE = "vnl_guard";
export const SSH_PORT = 22;
export const MAX_HOSTS = 50;
/** Fixed password of the lab's non-root users (root logs in by key only). */
export const LAB_PASSWORD = "virtnet-lab-pw";
export const SUDO_USER = "vnsudo";
export const PLAIN_USER = "vnplain";
/** Ranges that must never leave the machine. */
// The uplink side (198.19.0.0/24) lies inside 198.18.0.0/15, the RFC 2544 block; 203.0.113.0/24 is NOT used:
// on these machines the package mirror answers inside it.
export const LAB_RANGES = ["198.18.0.0/15", "198.51.100.0/24"];
export const GUEST_RANGES = ["10.0.0.0/8"];

const STATE_FILE = path.join(STATE_DIR, "state.json");
const CLIENT_KEY = path.join(STATE_DIR, "client", "id_ed25519");
const KNOWN_HOSTS = path.join(STATE_DIR, "known_hosts");
const BIN_DIR = path.join(STATE_DIR, "bin");
const HOSTS_DIR = path.join(STATE_DIR, "hosts");
const GUESTS_DIR = path.join(STATE_DIR, "guests");
const SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const GUEST_RE = /^[a-z0-9]{1,10}$/;
const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;
const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

export function hostName(i: number): string {
  return `h${i}`;
}
export function hostNamespace(host: string): string {
  return `${LAB_PREFIX}${host}`;
}
export function hostAddress(i: number): string {
  return `198.18.0.${10 + i}`;
}
export function hostUplinkAddress6(i: number): string {
  return `2001:db8:ff::${10 + i}`;
}
export function hostUplinkAddress(i: number): string {
  return `198.19.0.${10 + i}`;
}
export function hostUplink2Address(i: number): string {
  return `198.19.1.${10 + i}`;
}
/** Root-namespace end of a host's management veth. */
export function mgmtPortName(host: string): string {
  return `${LAB_PREFIX}m-${host}`;
}
/** Upstream-namespace end of a host's eth0. */
export function upstreamPortName(host: string): string {
  return `u-${host}`;
}
export function guestNamespace(guest: string): string {
  return `${LAB_PREFIX}g-${guest}`;
}
/** Name of a guest's veth end inside its host (enslaved to the guest's bridge there). */
export function guestHostIfName(guest: string): string {
  return `vg-${guest}`;
}

// ---------------------------------------------------------------------------------------------------------
// Types

export interface LabUser {
  name: string;
  uid: number;
  /** Password for password logins; null for root (key only). */
  password: string | null;
  sudo: boolean;
  shell: string;
}

/** What a host runs as its PID 1: its own sshd (the default, fastest), or systemd booting Debian's units. */
export type HostInit = "sshd" | "systemd";

export interface LabHost {
  name: string;
  init: HostInit;
  /** Management address: where the host's sshd listens. */
  address: string;
  port: number;
  user: string;
  privateKeyPath: string;
  /** OpenSSH public-key line of this host's own host key. */
  hostKey: string;
  /** "SHA256:..." as `ssh-keygen -lf` prints it. */
  hostKeySha256: string;
  /** The host's eth0 address (towards upstream). */
  uplinkAddress: string;
  uplinkAddress6: string;
  namespace: string;
  /** PID (in the root pid namespace) of the host's PID 1, its sshd. */
  pid: number;
  knownHostsPath: string;
  mgmtInterface: string;
  uplinkInterface: string;
  /** With two uplinks: eth1 and its address (towards upstream 2). */
  uplink2?: { interface: string; address: string };
  users: LabUser[];
}

export interface LabStatus {
  hosts: LabHost[];
  upstream: {
    address: string;
    serverAddress: string;
    address6: string;
    serverAddress6: string;
    namespace: string;
    bridge: string;
  };
  /** With two uplinks: the second upstream segment. */
  upstream2?: { address: string; serverAddress: string; namespace: string; bridge: string };
  users: LabUser[];
  privateKeyPath: string;
  knownHostsPath: string;
  stateDir: string;
  managementBridge: string;
  managementGateway: string;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  input?: string | Buffer;
  timeoutMs?: number;
  env?: Record<string, string>;
}

export interface DhcpLease {
  ip: string;
  prefix: number;
  router: string | null;
  dns: string[];
  hostname?: string;
  domain?: string;
  leaseSeconds?: number;
  serverId?: string;
  /** DHCP option 26, which the guest's eth0 was set to. */
  mtu?: number;
}

export interface UpResult {
  status: LabStatus;
  /** True when the lab was already up with the same host count and nothing was done. */
  reused: boolean;
  timings: Record<string, number>;
}

interface StoredHost {
  name: string;
  index: number;
  /** Absent in a state written before hosts could boot systemd: "sshd". */
  init?: HostInit;
  pid: number;
  launcherPid: number;
  hostKey: string;
  hostKeySha256: string;
}

/** The layout of a host's state dir and files: a lab up with another layout is brought up afresh. */
const STATE_VERSION = 2;

interface StoredState {
  version: number;
  hosts: StoredHost[];
  users: LabUser[];
  ready: boolean;
  /** Uplinks per host (absent: 1). */
  uplinks?: 1 | 2;
}

interface StoredGuest {
  name: string;
  host: string;
  bridge: string;
  mac?: string;
}

export class LabError extends Error {}

// ---------------------------------------------------------------------------------------------------------
// Processes

/** Environment for commands run in the lab: a clean login-like one, not the caller's. */
export function labEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = { PATH: SYS_PATH, HOME: "/root", USER: "root", LOGNAME: "root" };
  env.LANG = "C.UTF-8";
  if (process.env.TERM) env.TERM = process.env.TERM;
  return { ...env, ...extra };
}

/** Runs argv[0] with argv[1..] (no shell), collecting output. Never rejects; exit code 127 if not found. */
export function run(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), {
      stdio: ["pipe", "pipe", "pipe"],
      env: opts.env ?? labEnv(),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.stdin.on("error", () => undefined);
    child.on("error", (e) => {
      if (timer) clearTimeout(timer);
      resolve({ code: 127, stdout: "", stderr: `${argv[0]}: ${e.message}\n` });
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      let stderr = Buffer.concat(err).toString();
      if (timedOut) stderr += `\n${argv[0]}: timed out after ${opts.timeoutMs} ms\n`;
      const sig = signal ? 128 + (signalNumber(signal) ?? 0) : 0;
      resolve({ code: code ?? sig, stdout: Buffer.concat(out).toString(), stderr });
    });
    if (opts.timeoutMs) {
      timer = setTimeout(() => {
        timedOut = true;
        child.kill("SIGKILL");
      }, opts.timeoutMs);
    }
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

function signalNumber(signal: string): number | undefined {
  return (os.constants.signals as Record<string, number>)[signal];
}

async function must(argv: string[], opts: ExecOptions = {}): Promise<string> {
  const r = await run(argv, opts);
  if (r.code !== 0) {
    throw new LabError(`${argv.join(" ")} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`);
  }
  return r.stdout;
}

/** `ip -batch -` in the root namespace or in `ns`. */
async function ipBatch(lines: string[], ns?: string, force = false): Promise<void> {
  if (lines.length === 0) return;
  const argv = ["ip"];
  if (ns) argv.push("-n", ns);
  if (force) argv.push("-force");
  argv.push("-batch", "-");
  const r = await run(argv, { input: lines.join("\n") + "\n" });
  if (r.code !== 0 && !force) {
    throw new LabError(
      `ip ${ns ? `-n ${ns} ` : ""}-batch failed: ${r.stderr.trim()}\n  ${lines.join("\n  ")}`,
    );
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function readText(p: string): string | undefined {
  try {
    return fs.readFileSync(p, "utf8");
  } catch {
    return undefined;
  }
}

/** Process state letter from /proc/<pid>/stat, or undefined when gone. */
function procState(pid: number): string | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  const close = stat.lastIndexOf(")");
  return stat.slice(close + 2, close + 3);
}

/** Alive = exists and is not a zombie (orphans are reaped late here). */
function isAlive(pid: number): boolean {
  const s = procState(pid);
  return s !== undefined && s !== "Z" && s !== "X";
}

function cmdline(pid: number | string): string {
  return (readText(`/proc/${pid}/cmdline`) ?? "").split("\0").join(" ").trim();
}

function nsInode(p: string): number | undefined {
  try {
    return fs.statSync(p).ino;
  } catch {
    return undefined;
  }
}

function procNetInode(pid: string): number | undefined {
  try {
    const m = /\[(\d+)\]/.exec(fs.readlinkSync(`/proc/${pid}/ns/net`));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function exePath(pid: number): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return undefined;
  }
}

const SSHD = "/usr/sbin/sshd";
const SYSTEMD = "/lib/systemd/systemd";

/** The executable a host's PID 1 runs, as /proc/<pid>/exe names it (Debian 12 has /lib in /usr/lib). */
function initExe(init: HostInit): string {
  return init === "sshd" ? SSHD : fs.realpathSync(SYSTEMD);
}

/** Is the host's recorded PID 1 running its init, in the host's network namespace? */
function isHostInit(h: StoredHost): boolean {
  if (!h.pid || !isAlive(h.pid) || exePath(h.pid) !== initExe(h.init ?? "sshd")) return false;
  const ino = nsInode(`/run/netns/${hostNamespace(h.name)}`);
  return ino !== undefined && procNetInode(String(h.pid)) === ino;
}

function listPids(): string[] {
  return fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d));
}

/** Lab processes: in a lab network namespace (by inode), or carrying a lab marker on their command line. */
function findLabProcesses(netInodes: Set<number>): { pid: number; cmd: string; pid1: boolean }[] {
  const self = String(process.pid);
  const found: { pid: number; cmd: string; pid1: boolean }[] = [];
  for (const p of listPids()) {
    if (p === self) continue;
    const cmd = cmdline(p);
    const ino = procNetInode(p);
    const marked = cmd.includes(`${STATE_DIR}/`) || cmd.includes("VIRTNET_LAB_HOST=");
    if (!marked && !(ino !== undefined && netInodes.has(ino))) continue;
    if (!isAlive(Number(p))) continue;
    const nspid = /NSpid:\s+([\d\s]+)/.exec(readText(`/proc/${p}/status`) ?? "");
    const ids = nspid ? nspid[1].trim().split(/\s+/) : [];
    found.push({ pid: Number(p), cmd, pid1: ids.length > 1 && ids[ids.length - 1] === "1" });
  }
  return found;
}

async function waitDead(pids: number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  let left = pids.filter(isAlive);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(5);
    left = left.filter(isAlive);
  }
  return left;
}

function kill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}

/** Stops processes: SIGTERM the namespaces' PID 1s first (unshare ignores SIGTERM while its child lives),
 * then everything else, then SIGKILL whatever is left. Zombies count as dead. Returns the survivors. */
async function stopProcesses(procs: { pid: number; pid1: boolean }[]): Promise<number[]> {
  if (procs.length === 0) return [];
  const firsts = procs.filter((p) => p.pid1).map((p) => p.pid);
  // systemd as PID 1 answers SIGTERM by re-executing itself: it gets SIGKILL, which ends its pid namespace.
  const systemd = initExe("systemd");
  firsts.forEach((p) => kill(p, exePath(p) === systemd ? "SIGKILL" : "SIGTERM"));
  if (firsts.length) await waitDead(firsts, 1000);
  const all = procs.map((p) => p.pid);
  all.filter(isAlive).forEach((p) => kill(p, "SIGTERM"));
  let left = await waitDead(all, 1000);
  left.forEach((p) => kill(p, "SIGKILL"));
  left = await waitDead(left, 2000);
  return left;
}

// ---------------------------------------------------------------------------------------------------------
// Cgroups: each host runs in its own cgroup, named with the lab's prefix, which is also the root of the host's
// cgroup namespace (it sees it as /sys/fs/cgroup). Down finds and removes them by prefix.

const OWN_CGROUP2_MOUNT = path.join(STATE_DIR, "cgroup2");

/** Where this machine's cgroup v2 hierarchy is mounted: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a machine
 * with cgroup v1 controllers (as here). */
function mountedCgroupRoot(): string | undefined {
  for (const line of (readText("/proc/self/mountinfo") ?? "").split("\n")) {
    const f = line.split(" ");
    if (f[f.indexOf("-") + 1] === "cgroup2") return f[4];
  }
  return undefined;
}

async function hostCgroup(host: string): Promise<string> {
  let root = mountedCgroupRoot();
  if (!root) {
    fs.mkdirSync(OWN_CGROUP2_MOUNT, { recursive: true, mode: 0o700 });
    await must(["mount", "-t", "cgroup2", `${LAB_PREFIX}cgroup2`, OWN_CGROUP2_MOUNT]);
    root = OWN_CGROUP2_MOUNT;
  }
  return path.join(root, hostNamespace(host));
}

function labCgroups(): string[] {
  const root = mountedCgroupRoot();
  if (!root) return [];
  return fs
    .readdirSync(root)
    .filter((d) => d.startsWith(LAB_PREFIX))
    .map((d) => path.join(root, d));
}

/** Kills what is left in a cgroup and removes it with the cgroups systemd made in it, deepest first. */
async function removeCgroup(dir: string): Promise<void> {
  if (!fs.existsSync(dir)) return;
  try {
    fs.writeFileSync(path.join(dir, "cgroup.kill"), "1");
  } catch {
    // a kernel before 5.14: the host's processes were stopped already
  }
  const remove = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }))
      if (e.isDirectory()) remove(path.join(d, e.name));
    fs.rmdirSync(d);
  };
  for (let i = 0; ; i++) {
    try {
      return remove(dir);
    } catch (e) {
      if (i >= 200) throw e; // EBUSY while killed processes exit
      await sleep(10);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// State

function readState(): StoredState | undefined {
  const text = readText(STATE_FILE);
  if (!text) return undefined;
  try {
    return JSON.parse(text) as StoredState;
  } catch {
    return undefined;
  }
}

function writeState(state: StoredState): void {
  const tmp = `${STATE_FILE}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(state, null, 2) + "\n", { mode: 0o600 });
  fs.renameSync(tmp, STATE_FILE);
}

function toStatus(state: StoredState): LabStatus {
  const hosts = state.hosts.map(
    (h): LabHost => ({
      name: h.name,
      init: h.init ?? "sshd",
      address: hostAddress(h.index),
      port: SSH_PORT,
      user: "root",
      privateKeyPath: CLIENT_KEY,
      hostKey: h.hostKey,
      hostKeySha256: h.hostKeySha256,
      uplinkAddress: hostUplinkAddress(h.index),
      uplinkAddress6: hostUplinkAddress6(h.index),
      namespace: hostNamespace(h.name),
      pid: h.pid,
      knownHostsPath: KNOWN_HOSTS,
      mgmtInterface: HOST_MGMT_IF,
      uplinkInterface: HOST_UPLINK_IF,
      ...(state.uplinks === 2 && {
        uplink2: { interface: HOST_UPLINK2_IF, address: hostUplink2Address(h.index) },
      }),
      users: state.users,
    }),
  );
  return {
    hosts,
    upstream: {
      address: UPSTREAM_ADDRESS,
      serverAddress: SERVER_ADDRESS,
      address6: UPSTREAM_ADDRESS6,
      serverAddress6: SERVER_ADDRESS6,
      namespace: UPSTREAM_NAMESPACE,
      bridge: UPSTREAM_BRIDGE,
    },
    ...(state.uplinks === 2 && {
      upstream2: {
        address: UPSTREAM2_ADDRESS,
        serverAddress: SERVER2_ADDRESS,
        namespace: UPSTREAM2_NAMESPACE,
        bridge: UPSTREAM_BRIDGE,
      },
    }),
    users: state.users,
    privateKeyPath: CLIENT_KEY,
    knownHostsPath: KNOWN_HOSTS,
    stateDir: STATE_DIR,
    managementBridge: MGMT_BRIDGE,
    managementGateway: MGMT_GATEWAY,
  };
}

/** Why the recorded lab is not healthy, or undefined when it is. Sends no packet. */
function stateProblem(state: StoredState | undefined): string | undefined {
  if (!state) return "the lab is not up (no state; run `npm run lab -- up`)";
  if (!state.ready) return "the lab is not up (an `up` did not finish; run `npm run lab -- up` again)";
  if (!fs.existsSync(`/sys/class/net/${MGMT_BRIDGE}`)) return `the lab is broken: ${MGMT_BRIDGE} is missing`;
  for (const h of state.hosts) {
    if (!isHostInit(h)) {
      return `the lab is broken: host ${h.name} (pid ${h.pid}) is not running`;
    }
  }
  return undefined;
}

/** Status of the running lab; throws LabError when it is not up. */
export function labStatus(): LabStatus {
  const state = readState();
  const problem = stateProblem(state);
  if (problem) throw new LabError(problem);
  return toStatus(state!);
}

function storedHost(host: string): StoredHost {
  const state = readState();
  const problem = stateProblem(state);
  if (problem) throw new LabError(problem);
  const h = state!.hosts.find((x) => x.name === host);
  if (!h) throw new LabError(`no host ${host} (hosts: ${state!.hosts.map((x) => x.name).join(", ")})`);
  return h;
}

// ---------------------------------------------------------------------------------------------------------
// Keys and host files

function sha256Fingerprint(publicKeyLine: string): string {
  const blob = Buffer.from(publicKeyLine.trim().split(/\s+/)[1], "base64");
  return "SHA256:" + crypto.createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
}

async function keygen(file: string, comment: string): Promise<string> {
  await must(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]);
  return fs.readFileSync(`${file}.pub`, "utf8").trim();
}

function scriptPath(name: string): string {
  const candidates = [path.join(__dirname, name), path.resolve(__dirname, "../../../tests/lab", name)];
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) throw new LabError(`cannot find ${name} (looked in ${candidates.join(", ")})`);
  return found;
}

/** Copies a script into the state dir: by rename, so that a shell reading the old copy is not disturbed. */
function installScript(name: string): string {
  const dst = path.join(BIN_DIR, name);
  const tmp = `${dst}.${process.pid}.tmp`;
  fs.copyFileSync(scriptPath(name), tmp);
  fs.chmodSync(tmp, 0o755);
  fs.renameSync(tmp, dst);
  return dst;
}

/** The lab's users, with ids free in the machine's /etc/passwd and /etc/group (from 2001 up). */
function labUsers(): LabUser[] {
  const used = new Set<number>();
  for (const file of ["/etc/passwd", "/etc/group"]) {
    for (const line of fs.readFileSync(file, "utf8").split("\n")) {
      const id = Number(line.split(":")[2]);
      if (Number.isInteger(id)) used.add(id);
    }
  }
  let next = 2001;
  const pick = () => {
    while (used.has(next)) next++;
    used.add(next);
    return next;
  };
  return [
    { name: SUDO_USER, uid: pick(), password: LAB_PASSWORD, sudo: true, shell: "/bin/sh" },
    { name: PLAIN_USER, uid: pick(), password: LAB_PASSWORD, sudo: false, shell: "/bin/sh" },
  ];
}

/** Writes a file into an upper dir with the owner and mode of the machine's file it shadows (or given). */
function writeLike(
  file: string,
  content: string,
  like: string | { mode: number; uid?: number; gid?: number },
) {
  let mode: number, uid: number, gid: number;
  if (typeof like === "string") {
    const st = fs.statSync(like);
    [mode, uid, gid] = [st.mode & 0o7777, st.uid, st.gid];
  } else {
    [mode, uid, gid] = [like.mode, like.uid ?? 0, like.gid ?? 0];
  }
  fs.writeFileSync(file, content, { mode });
  fs.chmodSync(file, mode);
  fs.chownSync(file, uid, gid);
}

function mkdirOwned(dir: string, mode: number, uid = 0, gid = 0): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, mode);
  fs.chownSync(dir, uid, gid);
}

function sshdConfig(address: string): string {
  return [
    "# virtnet lab host sshd (written by tests/lab/lab.ts)",
    `ListenAddress ${address}:${SSH_PORT}`,
    "HostKey /etc/ssh/ssh_host_ed25519_key",
    "PermitRootLogin prohibit-password",
    "PubkeyAuthentication yes",
    "PasswordAuthentication yes",
    "KbdInteractiveAuthentication no",
    "UsePAM no",
    "UseDNS no",
    "StrictModes yes",
    "AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/virtnet-lab_authorized_keys",
    "Subsystem sftp internal-sftp",
    "AllowTcpForwarding yes",
    "AllowAgentForwarding no",
    "X11Forwarding no",
    "PrintMotd no",
    "PrintLastLog no",
    "MaxStartups 100:30:200",
    "AcceptEnv LANG LC_*",
    "",
  ].join("\n");
}

/** Files of one host's private /etc and /home, written into its upper dirs before it starts. */
function writeHostFiles(
  host: string,
  index: number,
  users: LabUser[],
  clientPub: string,
  pwHash: string,
  uplinks: 1 | 2,
) {
  const dir = path.join(HOSTS_DIR, host);
  const etc = path.join(dir, "upper", "etc");
  const home = path.join(dir, "upper", "home");
  const put = (rel: string, content: string, like: string | { mode: number; uid?: number; gid?: number }) =>
    writeLike(path.join(etc, rel), content, like);
  const real = (p: string) => fs.readFileSync(p, "utf8").replace(/\n?$/, "\n");
  const shadowGid = fs.statSync("/etc/shadow").gid;

  put("hostname", `${host}\n`, { mode: 0o644 });
  put(
    "hosts",
    `127.0.0.1\tlocalhost\n127.0.1.1\t${host}\n::1\tlocalhost ip6-localhost ip6-loopback\n` +
      `${hostAddress(index)}\t${host}.lab\n`,
    { mode: 0o644 },
  );
  put("resolv.conf", `nameserver ${SERVER_ADDRESS}\n`, { mode: 0o644 });
  const days = Math.floor(Date.now() / 86400000);
  put(
    "passwd",
    real("/etc/passwd") +
      users
        .map((u) => `${u.name}:x:${u.uid}:${u.uid}:virtnet lab user:/home/${u.name}:${u.shell}\n`)
        .join(""),
    "/etc/passwd",
  );
  put("group", real("/etc/group") + users.map((u) => `${u.name}:x:${u.uid}:\n`).join(""), "/etc/group");
  put(
    "shadow",
    real("/etc/shadow") + users.map((u) => `${u.name}:${pwHash}:${days}:0:99999:7:::\n`).join(""),
    fs.existsSync("/etc/shadow") ? "/etc/shadow" : { mode: 0o640, gid: shadowGid },
  );
  if (fs.existsSync("/etc/gshadow")) {
    put("gshadow", real("/etc/gshadow") + users.map((u) => `${u.name}:!::\n`).join(""), "/etc/gshadow");
  }
  mkdirOwned(path.join(etc, "sudoers.d"), 0o750);
  const sudoers = users
    .filter((u) => u.sudo)
    .map((u) => `${u.name} ALL=(ALL:ALL) NOPASSWD: ALL\n`)
    .join("");
  put("sudoers.d/virtnet-lab", sudoers, { mode: 0o440 });
  put("ssh/sshd_config", sshdConfig(hostAddress(index)), { mode: 0o644 });
  put("ssh/virtnet-lab_authorized_keys", `${clientPub}\n`, { mode: 0o644 });
  for (const u of users) {
    mkdirOwned(path.join(home, u.name), 0o750, u.uid, u.uid);
    mkdirOwned(path.join(home, u.name, ".ssh"), 0o700, u.uid, u.uid);
    writeLike(path.join(home, u.name, ".ssh", "authorized_keys"), `${clientPub}\n`, {
      mode: 0o600,
      uid: u.uid,
      gid: u.uid,
    });
  }
  // For a host that boots systemd: Debian's own units bring the links up (networking.service) and start sshd
  // (ssh.service), enabled in the host's own /etc/systemd/system (see host-init.sh).
  put("network/interfaces", ifupdownInterfaces(index, uplinks), { mode: 0o644 });
  put("default/ssh", `SSHD_OPTS="-e -o SetEnv=VIRTNET_LAB_HOST=${host}"\n`, { mode: 0o644 });
  mkdirOwned(path.join(etc, "sysctl.d"), 0o755);
  put(
    "sysctl.d/90-virtnet-lab.conf",
    `net.ipv4.ip_forward = 0\nnet.ipv6.conf.${HOST_MGMT_IF}.disable_ipv6 = 1\n`,
    {
      mode: 0o644,
    },
  );
  const units = path.join(dir, "systemd-system");
  for (const [target, unit] of [
    ["multi-user.target", "ssh.service"],
    ["multi-user.target", "networking.service"],
    ["network-online.target", "networking.service"],
  ]) {
    mkdirOwned(path.join(units, `${target}.wants`), 0o755);
    fs.symlinkSync(`/lib/systemd/system/${unit}`, path.join(units, `${target}.wants`, unit));
  }
  fs.writeFileSync(
    path.join(dir, "net.batch"),
    [
      "link set lo up",
      `addr add ${hostAddress(index)}/${MGMT_PREFIX_LEN} dev ${HOST_MGMT_IF}`,
      `link set ${HOST_MGMT_IF} up`,
      connectedRoute(MGMT_SUBNET, HOST_MGMT_IF, hostAddress(index)),
      `addr add ${hostUplinkAddress(index)}/${UPLINK_PREFIX_LEN} dev ${HOST_UPLINK_IF}`,
      `link set ${HOST_UPLINK_IF} up`,
      connectedRoute(UPLINK_SUBNET, HOST_UPLINK_IF, hostUplinkAddress(index)),
      `route add default via ${UPSTREAM_ADDRESS} dev ${HOST_UPLINK_IF} quickack 1`,
      `addr add ${hostUplinkAddress6(index)}/64 dev ${HOST_UPLINK_IF} nodad`,
      `route add default via ${UPSTREAM_ADDRESS6} dev ${HOST_UPLINK_IF}`,
      ...(uplinks === 2
        ? [
            `addr add ${hostUplink2Address(index)}/${UPLINK_PREFIX_LEN} dev ${HOST_UPLINK2_IF}`,
            `link set ${HOST_UPLINK2_IF} up`,
            connectedRoute(UPLINK2_SUBNET, HOST_UPLINK2_IF, hostUplink2Address(index)),
            `route add ${SERVER2_ADDRESS}/32 via ${UPSTREAM2_ADDRESS} dev ${HOST_UPLINK2_IF} quickack 1`,
          ]
        : []),
      "",
    ].join("\n"),
  );
}

/** The same links as net.batch, for ifupdown (networking.service) on a host that boots systemd. */
function ifupdownInterfaces(index: number, uplinks: number): string {
  const mgmt = hostAddress(index);
  const uplink = hostUplinkAddress(index);
  return [
    "# virtnet lab host (written by tests/lab/lab.ts): brought up by networking.service when the host boots systemd",
    "auto lo",
    "iface lo inet loopback",
    "",
    `auto ${HOST_MGMT_IF}`,
    `iface ${HOST_MGMT_IF} inet static`,
    `\taddress ${mgmt}/${MGMT_PREFIX_LEN}`,
    `\tup ip ${connectedRoute(MGMT_SUBNET, HOST_MGMT_IF, mgmt)}`,
    "",
    `auto ${HOST_UPLINK_IF}`,
    `iface ${HOST_UPLINK_IF} inet static`,
    `\taddress ${uplink}/${UPLINK_PREFIX_LEN}`,
    `\tup ip ${connectedRoute(UPLINK_SUBNET, HOST_UPLINK_IF, uplink)}`,
    `\tup ip route replace default via ${UPSTREAM_ADDRESS} dev ${HOST_UPLINK_IF} quickack 1`,
    `iface ${HOST_UPLINK_IF} inet6 static`,
    `\taddress ${hostUplinkAddress6(index)}/64`,
    "\tdad-attempts 0",
    `\tgateway ${UPSTREAM_ADDRESS6}`,
    ...(uplinks === 2
      ? [
          "",
          `auto ${HOST_UPLINK2_IF}`,
          `iface ${HOST_UPLINK2_IF} inet static`,
          `\taddress ${hostUplink2Address(index)}/${UPLINK_PREFIX_LEN}`,
          `\tup ip ${connectedRoute(UPLINK2_SUBNET, HOST_UPLINK2_IF, hostUplink2Address(index))}`,
          `\tup ip route add ${SERVER2_ADDRESS}/32 via ${UPSTREAM2_ADDRESS} dev ${HOST_UPLINK2_IF} quickack 1`,
        ]
      : []),
    "",
  ].join("\n");
}

/** The connected route of an address, with delayed ACKs off: OpenSSH leaves Nagle on for non-interactive
 * sessions, and Nagle against delayed ACKs costs ~40 ms per round trip (an ssh login: 0.21 s -> 0.13 s). */
function connectedRoute(subnet: string, dev: string, src: string): string {
  return `route replace ${subnet} dev ${dev} proto kernel scope link src ${src} quickack 1`;
}

function prepareHostDirs(host: string): void {
  const dir = path.join(HOSTS_DIR, host);
  for (const d of ["etc", "var", "home"]) {
    mkdirOwned(path.join(dir, "upper", d), 0o755);
    mkdirOwned(path.join(dir, "work", d), 0o700);
  }
  mkdirOwned(path.join(dir, "upper", "etc", "ssh"), 0o755);
  mkdirOwned(path.join(dir, "upper", "etc", "network"), 0o755);
  mkdirOwned(path.join(dir, "upper", "etc", "default"), 0o755);
  mkdirOwned(path.join(dir, "systemd-system"), 0o755);
}

// ---------------------------------------------------------------------------------------------------------
// Root-namespace plumbing

/** The root namespace's guard. Note: with br_netfilter loaded (bridge-nf-call-iptables=1, as here), frames
 * bridged between two hosts on the management bridge pass the forward hook with iifname and oifname both the
 * bridge: they are accepted first, so hosts reach each other (a bastion hop needs it); the rp filter in `pre`
 * still drops anything whose source the root would not route back over the management bridge. */
function nftGuard(): string {
  const lab = LAB_RANGES.join(", ");
  const guests = GUEST_RANGES.join(", ");
  const p = `"${LAB_PREFIX}*"`;
  return `table inet ${NFT_TABLE} {
  set lab4 { type ipv4_addr; flags interval; elements = { ${lab} }; }
  chain pre {
    type filter hook prerouting priority -300; policy accept;
    iifname ${p} meta nfproto ipv6 counter drop
    iifname ${p} fib saddr . iif oif missing counter drop
  }
  chain in {
    type filter hook input priority -10; policy accept;
    iifname ${p} ip saddr != ${MGMT_SUBNET} counter drop
  }
  chain fw {
    type filter hook forward priority -10; policy accept;
    iifname "${MGMT_BRIDGE}" oifname "${MGMT_BRIDGE}" accept
    iifname ${p} counter drop
    oifname ${p} counter drop
  }
  chain post {
    type filter hook postrouting priority -10; policy accept;
    oifname ${p} accept
    oifname "lo" accept
    ip saddr @lab4 counter drop
    ip daddr @lab4 counter drop
    iifname ${p} ip saddr { ${guests} } counter drop
    iifname ${p} counter drop
  }
}
`;
}

function writeIfSysctl(family: "ipv4" | "ipv6", ifname: string, key: string, value: string): void {
  fs.writeFileSync(`/proc/sys/net/${family}/conf/${ifname}/${key}`, value);
}

/** Creates one host's namespace links (root side and upstream sides). The host configures its own side. */
function hostLinkLines(host: string, index: number, uplinks: 1 | 2): string[] {
  const ns = hostNamespace(host);
  const uplink = (ifname: string, link: 1 | 2, upstream: string) =>
    `link add ${ifname} netns ${ns} address ${hostMac(link, index)} type veth ` +
    `peer name ${upstreamPortName(host)} netns ${upstream}`;
  return [
    `netns add ${ns}`,
    `link add ${mgmtPortName(host)} type veth peer name ${HOST_MGMT_IF} address ${hostMac(0, index)} netns ${ns}`,
    uplink(HOST_UPLINK_IF, 1, UPSTREAM_NAMESPACE),
    ...(uplinks === 2 ? [uplink(HOST_UPLINK2_IF, 2, UPSTREAM2_NAMESPACE)] : []),
  ];
}

/** Fixed MACs for a host's mgmt0 (0), eth0 (1) and eth1 (2): they survive a simulated reboot, as a real NIC's
 * do, so neighbours' ARP caches stay right (a new random MAC left the root unable to reach a rebooted host). */
export function hostMac(link: 0 | 1 | 2, index: number): string {
  return `02:76:6e:00:0${link}:${index.toString(16).padStart(2, "0")}`;
}

function hostPortSysctls(host: string): void {
  writeIfSysctl("ipv6", mgmtPortName(host), "disable_ipv6", "1");
  writeIfSysctl("ipv4", mgmtPortName(host), "rp_filter", "1");
}

async function attachHostPorts(hosts: string[], uplinks: 1 | 2): Promise<void> {
  const upstreams = uplinks === 2 ? [UPSTREAM_NAMESPACE, UPSTREAM2_NAMESPACE] : [UPSTREAM_NAMESPACE];
  await Promise.all([
    ipBatch(hosts.map((h) => `link set ${mgmtPortName(h)} master ${MGMT_BRIDGE} up`)),
    ...upstreams.map((ns) =>
      ipBatch(
        hosts.map((h) => `link set ${upstreamPortName(h)} master ${UPSTREAM_BRIDGE} up`),
        ns,
      ),
    ),
  ]);
}

/** Starts a host's init (detached) in the host's own cgroup and returns the launcher (unshare) pid. */
async function launchHost(host: string, kind: HostInit): Promise<number> {
  const dir = path.join(HOSTS_DIR, host);
  const init = installScript("host-init.sh"); // this build's, also when the lab was brought up by another
  const cgroup = await hostCgroup(host);
  await removeCgroup(cgroup); // what the host's last boot left (systemd's slices)
  fs.mkdirSync(cgroup);
  const log = fs.openSync(path.join(dir, "init.log"), "a");
  const child = spawn(
    "sh",
    [
      "-c",
      'echo $$ > "$1" && shift && exec "$@"', // into the host's cgroup, then the same process becomes unshare
      "sh",
      path.join(cgroup, "cgroup.procs"),
      "ip",
      "netns",
      "exec",
      hostNamespace(host),
      "unshare",
      "--mount",
      "--propagation",
      "slave",
      "--uts",
      "--ipc",
      "--pid",
      "--cgroup",
      "--fork",
      "--kill-child",
      "--mount-proc",
      init,
      host,
      dir,
      kind,
    ],
    { detached: true, stdio: ["ignore", log, log], env: labEnv() },
  );
  fs.closeSync(log);
  child.on("error", () => undefined);
  child.unref();
  if (!child.pid) throw new LabError(`could not start host ${host}`);
  return child.pid;
}

/** One attempt: connects and reads the SSH banner. */
function bannerOnce(address: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let buf = "";
    let done = false;
    const sock = net.connect({ host: address, port });
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on("data", (b) => {
      buf += b.toString("latin1");
      if (buf.includes("\n")) finish(buf.startsWith("SSH-2.0-"));
    });
    sock.on("error", () => finish(false));
    sock.on("close", () => finish(false));
  });
}

function childOf(pid: number): number | undefined {
  const kids = (readText(`/proc/${pid}/task/${pid}/children`) ?? "").trim().split(/\s+/).filter(Boolean);
  return kids.length ? Number(kids[0]) : undefined;
}

/** Waits until the host's PID 1 runs its init and sshd answers with its banner; returns PID 1's pid. */
async function waitHostReady(
  host: string,
  index: number,
  launcher: number,
  init: HostInit,
  timeoutMs = 15000,
): Promise<number> {
  const exe = initExe(init);
  const deadline = Date.now() + timeoutMs;
  const fail = (why: string) => {
    const log = readText(path.join(HOSTS_DIR, host, "init.log")) ?? "";
    return new LabError(`host ${host} did not come up: ${why}\n--- init.log ---\n${log.slice(-2000)}`);
  };
  let pid1: number | undefined;
  while (Date.now() < deadline) {
    pid1 ??= childOf(launcher);
    if (pid1 !== undefined && !isAlive(pid1)) throw fail("its init exited");
    if (pid1 === undefined && !isAlive(launcher)) throw fail("unshare exited");
    if (pid1 !== undefined && exePath(pid1) === exe) break;
    await sleep(3);
  }
  if (pid1 === undefined || exePath(pid1) !== exe) throw fail(`init did not exec ${exe}`);
  while (Date.now() < deadline) {
    if (await bannerOnce(hostAddress(index), SSH_PORT, 500)) return pid1;
    if (!isAlive(pid1)) throw fail("sshd exited");
    await sleep(5);
  }
  throw fail("sshd did not answer with its banner");
}

function sshArgs(address: string, user = "root"): string[] {
  return [
    "ssh",
    "-F",
    "/dev/null",
    "-i",
    CLIENT_KEY,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "IdentityAgent=none",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    `UserKnownHostsFile=${KNOWN_HOSTS}`,
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "ConnectTimeout=5",
    "-o",
    "LogLevel=ERROR",
    "-p",
    String(SSH_PORT),
    `${user}@${address}`,
  ];
}

/** Argv of the system ssh client logged in to a host with the lab's key and pinned host key. */
export function sshCommand(host: LabHost, argv: string[], user = "root"): string[] {
  return [...sshArgs(host.address, user), "--", ...argv];
}

/** One real login as root with the client key, the host key pinned to `hostKeyLine`, running a command.
 * In-process ssh2 (the provider's transport): a spawned OpenSSH client costs ~70 ms of CPU per login. */
function verifyLogin(host: string, index: number, hostKeyLine: string): Promise<void> {
  const expected = Buffer.from(hostKeyLine.split(/\s+/)[1], "base64");
  return new Promise((resolve, reject) => {
    const conn = new SshClient();
    let settled = false;
    const done = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      conn.end();
      if (err) reject(new LabError(`ssh login to ${host} failed: ${err.message}`));
      else resolve();
    };
    const timer = setTimeout(() => done(new Error("timed out")), 15000);
    conn.on("error", (e) => done(e));
    conn.on("ready", () => {
      conn.exec("echo virtnet-lab-ok", (err, stream) => {
        if (err) return done(err);
        let out = "";
        stream.on("data", (b: Buffer) => (out += b.toString()));
        stream.stderr.resume();
        stream.on("close", (code: number) => {
          done(
            code === 0 && out === "virtnet-lab-ok\n" ? undefined : new Error(`exit ${code}, output ${out}`),
          );
        });
      });
    });
    conn.connect({
      host: hostAddress(index),
      port: SSH_PORT,
      username: "root",
      privateKey: fs.readFileSync(CLIENT_KEY),
      hostVerifier: (key: Buffer) => key.equals(expected),
      readyTimeout: 15000,
    });
    conn.on("connect", () => (conn as unknown as { _sock?: net.Socket })._sock?.setNoDelay?.(true));
  });
}

// ---------------------------------------------------------------------------------------------------------
// up / down

/** Brings the lab up with `hosts` hosts (h1..hN), each with `uplinks` uplinks (1, or 2: eth1 into a second
 * upstream). A no-op when it is already up with that many hosts and uplinks. */
export async function labUp(
  opts: { hosts?: number; uplinks?: 1 | 2; verifyLogin?: boolean } = {},
): Promise<UpResult> {
  const n = opts.hosts ?? 2;
  const uplinks = opts.uplinks ?? 1;
  if (!Number.isInteger(n) || n < 1 || n > MAX_HOSTS) throw new LabError(`--hosts must be 1..${MAX_HOSTS}`);
  if (uplinks !== 1 && uplinks !== 2) throw new LabError("--uplinks must be 1 or 2");
  const t0 = Date.now();
  const timings: Record<string, number> = {};
  const mark = (k: string) => (timings[k] = Date.now() - t0);

  const old = readState();
  // A host booted into another init by a test is not the lab a new caller expects: start afresh.
  const plain = old?.version === STATE_VERSION && old.hosts.every((h) => (h.init ?? "sshd") === "sshd");
  if (
    old &&
    plain &&
    !stateProblem(old) &&
    old.hosts.length === n &&
    (old.uplinks ?? 1) === uplinks &&
    (await guardPresent())
  ) {
    const all = await Promise.all(old.hosts.map((h) => bannerOnce(hostAddress(h.index), SSH_PORT, 1000)));
    if (all.every(Boolean)) {
      installScript("udhcpc.sh"); // a lab brought up by an older build gets this build's script
      mark("total");
      return { status: toStatus(old), reused: true, timings };
    }
  }
  if (old || labPiecesPresent()) {
    const left = await labDown();
    if (left.length) throw new LabError(`could not clear the previous lab:\n  ${left.join("\n  ")}`);
    mark("down");
  }

  const names = Array.from({ length: n }, (_, i) => hostName(i + 1));
  mkdirOwned(STATE_DIR, 0o700);
  recordSharedSysctls();
  for (const d of [BIN_DIR, HOSTS_DIR, GUESTS_DIR, path.dirname(CLIENT_KEY)]) mkdirOwned(d, 0o700);
  installScript("udhcpc.sh");
  names.forEach(prepareHostDirs);
  const users = labUsers();
  const state: StoredState = { version: STATE_VERSION, hosts: [], users, ready: false, uplinks };
  writeState(state);

  // Keys and the password hash (in parallel with the network plumbing).
  const keysP = Promise.all([
    keygen(CLIENT_KEY, "virtnet-lab-client"),
    openssl(LAB_PASSWORD),
    ...names.map((h) => keygen(path.join(HOSTS_DIR, h, "upper/etc/ssh/ssh_host_ed25519_key"), `root@${h}`)),
  ]);

  const netP = (async () => {
    await ipBatch([
      `netns add ${UPSTREAM_NAMESPACE}`,
      ...(uplinks === 2 ? [`netns add ${UPSTREAM2_NAMESPACE}`] : []),
      `link add ${MGMT_BRIDGE} type bridge`,
      ...names.flatMap((h, i) => hostLinkLines(h, i + 1, uplinks)),
    ]);
    writeIfSysctl("ipv6", MGMT_BRIDGE, "disable_ipv6", "1");
    writeIfSysctl("ipv4", MGMT_BRIDGE, "rp_filter", "1");
    names.forEach(hostPortSysctls);
    await Promise.all([
      ipBatch([
        `addr add ${MGMT_GATEWAY}/${MGMT_PREFIX_LEN} dev ${MGMT_BRIDGE}`,
        `link set ${MGMT_BRIDGE} up`,
        connectedRoute(MGMT_SUBNET, MGMT_BRIDGE, MGMT_GATEWAY),
      ]),
      ipBatch(
        [
          ...upstreamLines(UPSTREAM_ADDRESS, UPLINK_SUBNET, SERVER_ADDRESS),
          `addr add ${UPSTREAM_ADDRESS6}/64 dev ${UPSTREAM_BRIDGE} nodad`,
          `addr add ${SERVER_ADDRESS6}/128 dev lo`,
        ],
        UPSTREAM_NAMESPACE,
      ),
      must(
        [
          "ip",
          "netns",
          "exec",
          UPSTREAM_NAMESPACE,
          "sysctl",
          "-q",
          "-w",
          "net.ipv4.ip_forward=0",
          "net.ipv6.conf.all.forwarding=0",
        ],
        {},
      ),
      ...(uplinks === 2 ? [upstream2Plumbing()] : []),
      must(["nft", "-f", "-"], { input: nftGuard() }),
    ]);
    await attachHostPorts(names, uplinks);
  })();

  const [keys] = await Promise.all([keysP, netP]);
  mark("plumbing");
  const [clientPub, pwHash, ...hostPubs] = keys;
  names.forEach((h, i) => writeHostFiles(h, i + 1, users, clientPub, pwHash, uplinks));
  fs.writeFileSync(KNOWN_HOSTS, names.map((_, i) => `${hostAddress(i + 1)} ${hostPubs[i]}\n`).join(""), {
    mode: 0o600,
  });

  const launchers = await Promise.all(names.map((h) => launchHost(h, "sshd")));
  state.hosts = names.map((h, i) => ({
    name: h,
    index: i + 1,
    init: "sshd",
    pid: 0,
    launcherPid: launchers[i],
    hostKey: hostPubs[i],
    hostKeySha256: sha256Fingerprint(hostPubs[i]),
  }));
  writeState(state);
  const pids = await Promise.all(names.map((h, i) => waitHostReady(h, i + 1, launchers[i], "sshd")));
  names.forEach((_, i) => (state.hosts[i].pid = pids[i]));
  mark("accepting");
  if (opts.verifyLogin !== false) {
    await Promise.all(names.map((h, i) => verifyLogin(h, i + 1, hostPubs[i])));
    mark("login");
  }
  state.ready = true;
  writeState(state);
  mark("total");
  return { status: toStatus(state), reused: false, timings };
}

/** An upstream namespace's IPv4: its bridge (the hosts' uplinks are its ports) and its server. */
function upstreamLines(address: string, subnet: string, server: string): string[] {
  return [
    "link set lo up",
    `link add ${UPSTREAM_BRIDGE} type bridge`,
    `addr add ${address}/${UPLINK_PREFIX_LEN} dev ${UPSTREAM_BRIDGE}`,
    `link set ${UPSTREAM_BRIDGE} up`,
    connectedRoute(subnet, UPSTREAM_BRIDGE, address),
    // No dummy driver in this kernel: the server address lives on lo.
    `addr add ${server}/32 dev lo`,
  ];
}

/** The second upstream: like the first, IPv4 only, forwarding nothing. */
async function upstream2Plumbing(): Promise<void> {
  await ipBatch(upstreamLines(UPSTREAM2_ADDRESS, UPLINK2_SUBNET, SERVER2_ADDRESS), UPSTREAM2_NAMESPACE);
  await must(["ip", "netns", "exec", UPSTREAM2_NAMESPACE, "sysctl", "-q", "-w", "net.ipv4.ip_forward=0"]);
}

async function openssl(password: string): Promise<string> {
  const salt = crypto
    .randomBytes(12)
    .toString("base64")
    .replace(/[^A-Za-z0-9]/g, "x");
  return (
    await must(["openssl", "passwd", "-6", "-salt", salt, "-stdin"], { input: password + "\n" })
  ).trim();
}

async function guardPresent(): Promise<boolean> {
  return (await run(["nft", "list", "table", "inet", NFT_TABLE])).code === 0;
}

function labNetnsNames(): string[] {
  try {
    return fs.readdirSync("/run/netns").filter((n) => n.startsWith(LAB_PREFIX));
  } catch {
    return [];
  }
}

function labRootLinks(): string[] {
  try {
    return fs.readdirSync("/sys/class/net").filter((n) => n.startsWith(LAB_PREFIX));
  } catch {
    return [];
  }
}

async function labNftTables(): Promise<{ family: string; name: string }[]> {
  const r = await run(["nft", "-j", "list", "tables"]);
  if (r.code !== 0) return [];
  const parsed = JSON.parse(r.stdout) as { nftables: { table?: { family: string; name: string } }[] };
  return parsed.nftables
    .filter((x) => x.table && x.table.name.startsWith(LAB_PREFIX.replace(/-$/, "")))
    .map((x) => ({ family: x.table!.family, name: x.table!.name }));
}

function labMounts(): string[] {
  const text = readText("/proc/self/mountinfo") ?? "";
  return text
    .split("\n")
    .filter((l) => l.includes(`/run/netns/${LAB_PREFIX}`) || l.includes(STATE_DIR) || / vnl-\S+ /.test(l))
    .map((l) => l.split(" ")[4]);
}

function labPiecesPresent(): boolean {
  return (
    fs.existsSync(STATE_DIR) ||
    labNetnsNames().length > 0 ||
    labRootLinks().length > 0 ||
    labCgroups().length > 0
  );
}

/** Removes everything the lab made (found by prefix, with or without state files), then checks.
 * Returns the leftovers (empty when clean). Safe to run twice. */
// Sysctls that are one value for the whole machine, not per network namespace, which virtnet may change
// inside a lab host (provider/plan/hostState.ts raises the inotify limit for many dnsmasqs). Recorded at up, put back at down,
// so that a run stopped half way does not leave this machine changed.
const SHARED_SYSCTLS = ["/proc/sys/fs/inotify/max_user_instances"];
const SHARED_SYSCTLS_FILE = path.join(STATE_DIR, "shared-sysctls.json");

function recordSharedSysctls(): void {
  const values = Object.fromEntries(SHARED_SYSCTLS.map((f) => [f, fs.readFileSync(f, "utf8").trim()]));
  fs.writeFileSync(SHARED_SYSCTLS_FILE, JSON.stringify(values), { mode: 0o600 });
}

function restoreSharedSysctls(): void {
  if (!fs.existsSync(SHARED_SYSCTLS_FILE)) return;
  const values = JSON.parse(fs.readFileSync(SHARED_SYSCTLS_FILE, "utf8")) as Record<string, string>;
  for (const [f, v] of Object.entries(values))
    if (SHARED_SYSCTLS.includes(f) && /^\d+$/.test(v) && fs.readFileSync(f, "utf8").trim() !== v)
      fs.writeFileSync(f, v);
}

export async function labDown(): Promise<string[]> {
  const namespaces = labNetnsNames();
  const inodes = new Set(namespaces.map((n) => nsInode(`/run/netns/${n}`)).filter((x): x is number => !!x));
  // Host PID 1s (sshd or systemd) first; then guests' and upstream's processes; then the launchers. Again
  // while new ones appear: a daemon that is being stopped may still start a helper (firewalld does).
  for (let i = 0; i < 3; i++) {
    const procs = findLabProcesses(inodes);
    if (procs.length === 0) break;
    await stopProcesses(procs);
  }

  // Root links first: deleting a veth is synchronous (both ends go at once), while a deleted namespace's
  // interfaces go away later, from a kernel work queue.
  await ipBatch(
    labRootLinks().map((l) => `link del ${l}`),
    undefined,
    true,
  );
  await ipBatch(
    namespaces.map((n) => `netns del ${n}`),
    undefined,
    true,
  );
  for (let i = 0; i < 100 && labRootLinks().length > 0; i++) await sleep(10);
  for (const t of await labNftTables()) await run(["nft", "delete", "table", t.family, t.name]);
  for (const c of labCgroups()) await removeCgroup(c).catch(() => undefined); // reported below
  for (const m of labMounts()) await run(["umount", "-l", m]);
  restoreSharedSysctls();
  fs.rmSync(STATE_DIR, { recursive: true, force: true });

  const left: string[] = [];
  for (const n of labNetnsNames()) left.push(`namespace ${n}`);
  for (const l of labRootLinks()) left.push(`link ${l}`);
  for (const p of findLabProcesses(inodes)) left.push(`process ${p.pid} ${p.cmd}`);
  for (const t of await labNftTables()) left.push(`nft table ${t.family} ${t.name}`);
  for (const m of labMounts()) left.push(`mount ${m}`);
  for (const c of labCgroups()) left.push(`cgroup ${c}`);
  if (fs.existsSync(STATE_DIR)) left.push(`file ${STATE_DIR}`);
  return left;
}

/** Reboots one host: stops it (a host running systemd shuts down as `systemctl reboot` does, stopping its
 * units), recreates its network namespace (so everything configured in it, such as bridges and nft tables, is
 * gone) and starts it again with the same /etc, /var and /home, with `init` as PID 1 (default: the same). */
export async function hostReboot(host: string, opts: { init?: HostInit } = {}): Promise<LabHost> {
  const h = storedHost(host);
  const state = readState()!;
  const ns = hostNamespace(host);
  if ((h.init ?? "sshd") === "systemd") {
    await hostExec(host, ["systemctl", "reboot"]);
    await waitDead([h.launcherPid], 30000); // what a shutdown leaves running is stopped below
  }
  const inode = nsInode(`/run/netns/${ns}`);
  const procs = findLabProcesses(new Set(inode ? [inode] : [])).filter(
    (p) => procNetInode(String(p.pid)) === inode || p.pid === h.launcherPid,
  );
  const left = await stopProcesses(procs);
  if (left.length) throw new LabError(`could not stop ${host}: pids ${left.join(" ")} survive`);
  // Delete the host's lab veths first (synchronous; a namespace's interfaces go away later, from a work queue).
  const uplinks = state.uplinks ?? 1;
  await ipBatch(
    [
      `link del ${HOST_MGMT_IF}`,
      `link del ${HOST_UPLINK_IF}`,
      ...(uplinks === 2 ? [`link del ${HOST_UPLINK2_IF}`] : []),
    ],
    ns,
    true,
  );
  await ipBatch([`netns del ${ns}`]);
  for (let i = 0; i < 200 && fs.existsSync(`/sys/class/net/${mgmtPortName(host)}`); i++) await sleep(5);
  await ipBatch(hostLinkLines(host, h.index, uplinks));
  hostPortSysctls(host);
  await attachHostPorts([host], uplinks);
  h.init = opts.init ?? h.init ?? "sshd";
  const launcher = await launchHost(host, h.init);
  h.launcherPid = launcher;
  h.pid = await waitHostReady(host, h.index, launcher, h.init);
  const stored = state.hosts.find((x) => x.name === host)!;
  Object.assign(stored, h);
  writeState(state);
  return toStatus(state).hosts.find((x) => x.name === host)!;
}

// ---------------------------------------------------------------------------------------------------------
// Running commands on hosts, upstream and guests (no SSH)

/** Argv that runs `argv` inside all of a host's namespaces (network, mount, pid, uts, ipc). */
export function hostCommand(host: string, argv: string[]): string[] {
  const h = storedHost(host);
  return ["nsenter", "--target", String(h.pid), "--all", "--wd=/", "--", ...argv];
}

export function hostExecEnv(host: string): Record<string, string> {
  return labEnv({ VIRTNET_LAB_HOST: host });
}

export function hostExec(host: string, argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return run(hostCommand(host, argv), { ...opts, env: opts.env ?? hostExecEnv(host) });
}

/** Argv that runs `argv` in the upstream namespace of uplink 1 (eth0) or 2 (eth1, labUp({ uplinks: 2 })). */
export function upstreamCommand(argv: string[], uplink: 1 | 2 = 1): string[] {
  const ns = uplink === 2 ? UPSTREAM2_NAMESPACE : UPSTREAM_NAMESPACE;
  if (!labNetnsNames().includes(ns)) throw new LabError(`the lab is not up with uplink ${uplink} (no ${ns})`);
  return ["ip", "netns", "exec", ns, ...argv];
}

export function upstreamExec(argv: string[], opts: ExecOptions = {}, uplink: 1 | 2 = 1): Promise<ExecResult> {
  return run(upstreamCommand(argv, uplink), opts);
}

function checkGuestName(guest: string): void {
  if (!GUEST_RE.test(guest)) throw new LabError(`bad guest name "${guest}": use [a-z0-9]{1,10}`);
}

function requireGuest(guest: string): StoredGuest {
  checkGuestName(guest);
  const text = readText(path.join(GUESTS_DIR, `${guest}.json`));
  if (!text || !labNetnsNames().includes(guestNamespace(guest))) throw new LabError(`no guest ${guest}`);
  return JSON.parse(text) as StoredGuest;
}

export function guestCommand(guest: string, argv: string[]): string[] {
  requireGuest(guest);
  return ["ip", "netns", "exec", guestNamespace(guest), ...argv];
}

export function guestExec(guest: string, argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return run(guestCommand(guest, argv), opts);
}

/** Attaches a new guest to `bridge` on `host`: a namespace whose eth0 is a veth with its other end
 * (guestHostIfName(guest)) enslaved to the bridge inside the host. */
export async function guestAdd(
  guest: string,
  host: string,
  bridge: string,
  opts: { mac?: string } = {},
): Promise<{ namespace: string; hostIfName: string }> {
  checkGuestName(guest);
  if (!IFNAME_RE.test(bridge)) throw new LabError(`bad bridge name "${bridge}"`);
  if (opts.mac !== undefined && !MAC_RE.test(opts.mac)) throw new LabError(`bad MAC "${opts.mac}"`);
  storedHost(host);
  const hostNs = hostNamespace(host);
  const ns = guestNamespace(guest);
  if (labNetnsNames().includes(ns)) throw new LabError(`guest ${guest} exists already`);
  const show = await run(["ip", "-n", hostNs, "-d", "-j", "link", "show", "dev", bridge]);
  let mtu = 1500;
  if (show.code === 0) {
    const info = (JSON.parse(show.stdout) as { mtu: number; linkinfo?: { info_kind?: string } }[])[0];
    if (info?.linkinfo?.info_kind !== "bridge") throw new LabError(`${bridge} on ${host} is not a bridge`);
    mtu = info.mtu;
  } else {
    throw new LabError(`bridge ${bridge} does not exist on host ${host}`);
  }
  const hostIf = guestHostIfName(guest);
  const mac = opts.mac ? ` address ${opts.mac}` : "";
  try {
    await ipBatch([
      `netns add ${ns}`,
      `link add ${GUEST_IF} netns ${ns}${mac} mtu ${mtu} type veth peer name ${hostIf} mtu ${mtu} netns ${hostNs}`,
    ]);
    await Promise.all([
      ipBatch([`link set ${hostIf} master ${bridge} up`], hostNs),
      ipBatch(["link set lo up", `link set ${GUEST_IF} up`], ns),
    ]);
  } catch (e) {
    await ipBatch([`netns del ${ns}`], undefined, true);
    throw e;
  }
  const stored: StoredGuest = { name: guest, host, bridge, ...(opts.mac ? { mac: opts.mac } : {}) };
  fs.writeFileSync(path.join(GUESTS_DIR, `${guest}.json`), JSON.stringify(stored) + "\n");
  return { namespace: ns, hostIfName: hostIf };
}

/** Static IPv4 address (and optional default route) on a guest's eth0. */
export async function guestAddr(guest: string, cidr: string, gateway?: string): Promise<void> {
  requireGuest(guest);
  if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(cidr)) throw new LabError(`bad address "${cidr}" (a.b.c.d/n)`);
  if (gateway !== undefined && !net.isIPv4(gateway)) throw new LabError(`bad gateway "${gateway}"`);
  const lines = [`addr flush dev ${GUEST_IF} scope global`, `addr add ${cidr} dev ${GUEST_IF}`];
  if (gateway) lines.push(`route replace default via ${gateway} dev ${GUEST_IF}`);
  await ipBatch(lines, guestNamespace(guest));
}

/** Runs busybox udhcpc (with the lab's own script) in the guest until it has a lease; configures address and
 * default route. Throws when no lease arrives within timeoutMs (default 15 s; dnsmasq's ping check alone
 * delays the first offer by ~3 s). */
export async function guestDhcp(guest: string, opts: { timeoutMs?: number } = {}): Promise<DhcpLease> {
  requireGuest(guest);
  const timeoutMs = opts.timeoutMs ?? 15000;
  const leaseFile = path.join(GUESTS_DIR, `${guest}.lease`);
  fs.rmSync(leaseFile, { force: true });
  const tries = Math.max(1, Math.ceil(timeoutMs / 1000));
  const r = await run(
    [
      "ip",
      "netns",
      "exec",
      guestNamespace(guest),
      "busybox",
      "udhcpc",
      "-f",
      "-q",
      "-n",
      "-i",
      GUEST_IF,
      "-t",
      String(tries),
      "-T",
      "1",
      "-s",
      path.join(BIN_DIR, "udhcpc.sh"),
      "-x",
      `hostname:${guest}`,
    ],
    { timeoutMs, env: labEnv({ VIRTNET_LAB_LEASE_FILE: leaseFile }) },
  );
  const text = readText(leaseFile);
  if (!text) {
    throw new LabError(
      `guest ${guest}: no DHCP lease within ${timeoutMs} ms (udhcpc exit ${r.code})\n${r.stderr}`,
    );
  }
  return parseLease(text);
}

function parseLease(text: string): DhcpLease {
  const kv: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) kv[line.slice(0, eq)] = line.slice(eq + 1).trim();
  }
  const lease: DhcpLease = {
    ip: kv.ip,
    prefix: Number(kv.prefix),
    router: kv.router || null,
    dns: (kv.dns ?? "").split(/\s+/).filter(Boolean),
  };
  if (kv.hostname) lease.hostname = kv.hostname;
  if (kv.domain) lease.domain = kv.domain;
  if (kv.lease) lease.leaseSeconds = Number(kv.lease);
  if (kv.serverid) lease.serverId = kv.serverid;
  if (kv.mtu) lease.mtu = Number(kv.mtu);
  return lease;
}

/** Removes a guest (its namespace, processes and veth). Succeeds when the guest does not exist. */
export async function guestDel(guest: string): Promise<boolean> {
  checkGuestName(guest);
  const ns = guestNamespace(guest);
  const jsonFile = path.join(GUESTS_DIR, `${guest}.json`);
  const stored = readText(jsonFile);
  const host = stored ? (JSON.parse(stored) as StoredGuest).host : undefined;
  fs.rmSync(jsonFile, { force: true });
  fs.rmSync(path.join(GUESTS_DIR, `${guest}.lease`), { force: true });
  if (!labNetnsNames().includes(ns)) return false;
  const inode = nsInode(`/run/netns/${ns}`);
  const procs = inode
    ? findLabProcesses(new Set([inode])).filter((p) => procNetInode(String(p.pid)) === inode)
    : [];
  await stopProcesses(procs);
  // Delete the veth first: that is synchronous (a deleted namespace's interfaces go later, from a work
  // queue), so its end in the host is gone on return. Then make sure of it.
  const del = await run(["ip", "-n", ns, "link", "del", GUEST_IF]);
  await ipBatch([`netns del ${ns}`]);
  if (host && labNetnsNames().includes(hostNamespace(host))) {
    const showArgv = ["ip", "-n", hostNamespace(host), "link", "show", "dev", guestHostIfName(guest)];
    for (let i = 0; i < 200 && (await run(showArgv)).code === 0; i++) await sleep(10);
    if ((await run(showArgv)).code === 0) {
      throw new LabError(
        `guest ${guest}: ${guestHostIfName(guest)} is still in ${host} (${del.stderr.trim()})`,
      );
    }
  }
  return true;
}

/** Guests recorded in the state dir. */
export function guestList(): StoredGuest[] {
  try {
    return fs
      .readdirSync(GUESTS_DIR)
      .filter((f) => f.endsWith(".json"))
      .map((f) => JSON.parse(fs.readFileSync(path.join(GUESTS_DIR, f), "utf8")) as StoredGuest);
  } catch {
    return [];
  }
}
