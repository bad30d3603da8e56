// Shared pieces of the end-to-end tests: lab hosts as virtnet connections, engine stacks, host snapshots.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { makeProjectDir, TestStack } from "../engine/engine";
import { isSecret } from "../engine/plugin";
import { networkChainsOf } from "../../provider/render/nftables";
import {
  hostCommand,
  hostExec,
  LabHost,
  labEnv,
  labStatus,
  labUp,
  run,
  STATE_DIR as LAB_STATE_DIR,
  upstreamCommand,
} from "../lab/lab";

export async function labHosts(n = 2): Promise<LabHost[]> {
  await labUp({ hosts: n });
  return labStatus().hosts;
}

export function privateKeyOf(h: LabHost): string {
  return fs.readFileSync(h.privateKeyPath, "utf8");
}

/** A connection argument for a lab host, as a user writes it. */
export function connectionFor(h: LabHost): { host: string; hostKey: string; privateKey: string } {
  return { host: h.address, hostKey: h.hostKey, privateKey: privateKeyOf(h) };
}

/**
 * A stack whose config points virtnet at a lab host, with the private key as a secret. `stack`: its name (default
 * "stack"), which virtnet records with what the stack declares (project "project").
 */
export function stackFor(h: LabHost, extra: Record<string, string> = {}, stack?: string): TestStack {
  return new TestStack({
    cwd: projectDir(),
    ...(stack ? { stack } : {}),
    config: {
      "virtnet:host": h.address,
      "virtnet:hostKey": h.hostKey,
      "virtnet:privateKey": { secret: privateKeyOf(h) },
      ...extra,
    },
  });
}

let sharedProject: string | undefined;
/** A user-like project directory: node_modules/pulumi-virtnet links to this repo. */
export function projectDir(): string {
  sharedProject ??= makeProjectDir({ project: "virtnet-e2e" });
  return sharedProject;
}

export async function sh(host: string, script: string): Promise<string> {
  const r = await hostExec(host, ["sh", "-c", script]);
  if (r.code !== 0) throw new Error(`${host}: ${script}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/**
 * Everything on a host that virtnet could touch, with counters, timers and IPv6 link-local autoconf removed: links, addresses,
 * routes, the whole nft ruleset, iptables and ip6tables, virtnet's directories, all of /etc (every entry with its
 * type, mode and owner, a file's content by checksum, a link's target), dnsmasq processes, forwarding.
 */
export function snapshot(host: string): Promise<string> {
  return sh(
    host,
    [
      // IPv6 link-local autoconf is the kernel's own (and changes as DAD finishes): not virtnet's business.
      "echo '## links'; ip -o link show | sed -E 's/^[0-9]+: //'",
      "echo '## addresses'; ip -o addr show | sed -E 's/^[0-9]+: //' | grep -v ' fe80::'",
      "echo '## routes'; ip route show table all | grep -v 'fe80::'",
      "echo '## nft'; nft -s list ruleset", // -s: without counters, which iptables-nft rules carry
      "echo '## iptables'; iptables-save | grep -v '^#' | sed -E 's/\\[[0-9]+:[0-9]+\\]//'",
      "echo '## ip6tables'; ip6tables-save | grep -v '^#' | sed -E 's/\\[[0-9]+:[0-9]+\\]//'",
      "echo '## files'; find /var/lib/virtnet /run/virtnet /run/lock -printf '%p %m %s\\n' 2>/dev/null | sort",
      // A stray write anywhere in /etc shows: what is there, and what each file holds.
      "echo '## etc'; find /etc -xdev -printf '%p %y %m %u:%g %l\\n' | sort",
      "find /etc -xdev -type f -exec md5sum {} + | sort -k 2",
      "echo '## dnsmasq'; for p in /proc/[0-9]*; do c=$(tr '\\0' ' ' < $p/cmdline 2>/dev/null); case \"$c\" in dnsmasq*) [ \"$(cut -d' ' -f3 $p/stat)\" != Z ] && echo \"$c\";; esac; done | sort",
      "echo '## sysctl'; sysctl net.ipv4.ip_forward net.ipv6.conf.all.forwarding",
    ].join("; "),
  );
}

/** A network's chains in virtnet's nft table as the kernel lists them, in `rendered.nftables` form ("" when none). */
export async function nftChainsOf(host: string, network: string): Promise<string> {
  const r = await hostExec(host, ["nft", "list", "table", "inet", "virtnet"]);
  return (r.code === 0 && networkChainsOf(r.stdout, network)) || "";
}

export interface CaptureOptions {
  /** Packets to wait for (default 1): tcpdump ends after that many, or after timeoutS. */
  count?: number;
  /** Which upstream: 1 (eth0's, the default) or 2 (eth1's, in a lab with two uplinks). */
  uplink?: 1 | 2;
  /** Interface to listen on (default "any", where a bridged packet shows once per port it crosses). */
  iface?: string;
  /** When the capture gives up (default 8 s): longer around a long action, such as a VM's boot. */
  timeoutS?: number;
}

/**
 * Starts tcpdump in an upstream namespace and resolves, after `action`, with what it captured: which source
 * address reached the internet. The capture ends after `count` packets (default 1), or `timeoutS` after it
 * started.
 */
export function captureUpstream(
  filter: string,
  action: () => Promise<unknown>,
  opts: CaptureOptions = {},
): Promise<string> {
  return capture((argv) => upstreamCommand(argv, opts.uplink), filter, action, opts);
}

/** Like captureUpstream, inside a lab host: what arrived there. */
export function captureOnHost(host: string, filter: string, action: () => Promise<unknown>): Promise<string> {
  return capture((argv) => hostCommand(host, argv), filter, action);
}

/** SSH logins a lab host's sshd has accepted so far (its log is the lab host's init.log). */
export function sshLogins(host: string): number {
  const log = fs.readFileSync(path.join(LAB_STATE_DIR, "hosts", host, "init.log"), "utf8");
  return log.split("\n").filter((l) => l.startsWith("Accepted ")).length;
}

async function capture(
  wrap: (argv: string[]) => string[],
  filter: string,
  action: () => Promise<unknown>,
  opts: Omit<CaptureOptions, "uplink"> = {},
): Promise<string> {
  const [c, t] = [String(opts.count ?? 1), String(opts.timeoutS ?? 8)];
  const argv = wrap(["timeout", t, "tcpdump", "-n", "-l", "-i", opts.iface ?? "any", "-c", c, filter]);
  const p = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  // Listened for from the start: tcpdump may see its packets and exit while a long action still runs.
  const closed = new Promise((resolve) => p.on("close", resolve));
  let out = "";
  let err = "";
  p.stdout.on("data", (d) => (out += d));
  const listening = new Promise<void>((resolve) => {
    p.stderr.on("data", (d) => {
      err += d;
      if (err.includes("listening on")) resolve();
    });
    setTimeout(resolve, 3000);
  });
  await listening;
  try {
    await action();
  } catch (e) {
    p.kill();
    throw e;
  }
  await closed;
  return out;
}

export interface SshAgent {
  /** Its socket: what SSH_AUTH_SOCK names. */
  socket: string;
  /** ssh-add with the agent's socket (e.g. ["-D"] removes every key). */
  add(args: string[]): Promise<void>;
  stop(): Promise<void>;
}

/** An ssh-agent of the test's own (OpenSSH's, in the foreground), holding the lab's client key. */
export async function sshAgent(keyPath: string): Promise<SshAgent> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vn-e2e-agent-"));
  const socket = path.join(dir, "agent.sock");
  const agent = spawn("ssh-agent", ["-D", "-a", socket], { stdio: "ignore" });
  const exited = new Promise((resolve) => agent.once("exit", resolve));
  for (let i = 0; i < 200 && !fs.existsSync(socket); i++) await new Promise((r) => setTimeout(r, 10));
  const add = async (args: string[]) => {
    const r = await run(["ssh-add", ...args], { env: { ...labEnv(), SSH_AUTH_SOCK: socket } });
    if (r.code !== 0) throw new Error(`ssh-add ${args.join(" ")}: exit ${r.code}: ${r.stderr}`);
  };
  const stop = async () => {
    agent.kill();
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await add([keyPath]);
  } catch (e) {
    await stop();
    throw e;
  }
  return { socket, add, stop };
}

export function repoPath(...parts: string[]): string {
  return path.resolve(__dirname, "../../..", ...parts);
}

/** The state as the engine would store it in clear: every secret-wrapped value replaced. */
export function clearText(v: unknown): string {
  const redact = (x: any): any => {
    if (isSecret(x)) return "[secret]";
    if (Array.isArray(x)) return x.map(redact);
    if (x && typeof x === "object")
      return Object.fromEntries(Object.entries(x).map(([k, y]) => [k, redact(y)]));
    return x;
  };
  return JSON.stringify(redact(v));
}
