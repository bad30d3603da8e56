// Gates on a lab host: pause virtnet's own apply script at a chosen step, so a test can cut the SSH
// connection exactly there and then let the script go on. Each gated tool (flock, mv, dnsmasq, ip) is
// replaced by a wrapper with a bind mount inside the lab host's private mount namespace only (nothing on
// this machine or on other lab hosts changes). Unarmed, the wrapper execs the real tool at once. Armed with
// (argument substring, parent command-line substring), the first matching call waits until released.
import { hostExec } from "../lab/lab";

const DIR = "/run/hzgate"; // /run is the lab host's own tmpfs

const WRAPPER = String.raw`#!/bin/bash
# virtnet test gate (tests/support-fault/gate.ts): runs the real tool unless armed for this call.
g=${DIR}
if [ -f $g/armed ]; then
  IFS=$'\t' read -r want_args want_parent < $g/armed
  parent=$(tr '\0' ' ' < /proc/$PPID/cmdline 2>/dev/null)
  if [[ " $* " == *"$want_args"* && "$parent" == *"$want_parent"* ]] && mv $g/armed $g/taken.$$ 2>/dev/null; then
    p=$$; sshd=""
    while [ "$p" -gt 1 ]; do
      [ -z "$sshd" ] && [ "$(cat /proc/$p/comm)" = sshd ] && sshd=$p
      p=$(awk '/^PPid:/ {print $2}' /proc/$p/status)
    done
    printf 'pid=%s\nscript=%s\nsshd=%s\n' $$ $PPID "$sshd" > $g/reached.tmp && mv $g/reached.tmp $g/reached
    while [ ! -e $g/release ]; do sleep 0.02; done
  fi
fi
exec -a __TOOL__ $g/real/__TOOL__ "$@"
`;

async function sh(host: string, script: string, ...args: string[]): Promise<string> {
  const r = await hostExec(host, ["bash", "-c", script, "gate", ...args]);
  if (r.code !== 0) throw new Error(`${host}: gate: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Reached {
  /** The gated tool's process (waiting), the script that called it, and that script's sshd session. */
  pid: number;
  script: number;
  sshd?: number;
}

export class HostGate {
  constructor(
    readonly host: string,
    readonly tools = ["flock", "mv", "dnsmasq", "ip"], // mv: a file write's last step (write_file)
  ) {}

  async install(): Promise<void> {
    await sh(
      this.host,
      `set -eu
g=${DIR}; w=$1; shift
mkdir -p $g/real; rm -f $g/armed $g/release $g/reached $g/taken.*
for t in "$@"; do
  p=$(readlink -f "$(command -v "$t")")
  if ! grep -q " $p " /proc/self/mountinfo; then
    cp "$p" $g/real/$t
    printf '%s' "$w" | sed "s/__TOOL__/$t/g" > $g/wrap-$t
    chmod 0755 $g/wrap-$t
    mount --bind $g/wrap-$t "$p"
  fi
done`,
      WRAPPER,
      ...this.tools,
    );
  }

  /** Removes the wrappers; tools run as before. Processes started through them keep running. */
  async uninstall(): Promise<void> {
    await sh(
      this.host,
      `g=${DIR}; touch $g/release 2>/dev/null
for t in "$@"; do
  p=$(readlink -f "$(command -v "$t")")
  while grep -q " $p " /proc/self/mountinfo; do umount -l "$p" || break; done
done
rm -f $g/armed $g/reached $g/taken.* $g/wrap-*; :`,
      ...this.tools,
    );
  }

  /** The next call whose arguments contain `args` and whose caller's command line contains `parent` waits. */
  async arm(args: string, parent = ""): Promise<void> {
    await sh(
      this.host,
      `g=${DIR}; rm -f $g/release $g/reached $g/taken.*; printf '%s\\t%s\\n' "$1" "$2" > $g/armed.tmp && mv $g/armed.tmp $g/armed`,
      args,
      parent,
    );
  }

  async disarm(): Promise<void> {
    await sh(this.host, `rm -f ${DIR}/armed; touch ${DIR}/release`);
  }

  /** Resolves when an armed call is waiting at the gate. */
  async reached(timeoutMs = 30_000): Promise<Reached> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const out = await sh(this.host, `cat ${DIR}/reached 2>/dev/null; :`);
      if (out.includes("pid=")) {
        const get = (k: string) =>
          /^(\w+)=(\d*)$/m.exec(out.split("\n").find((l) => l.startsWith(k)) ?? "")?.[2];
        return {
          pid: Number(get("pid")),
          script: Number(get("script")),
          sshd: Number(get("sshd")) || undefined,
        };
      }
      await sleep(25);
    }
    throw new Error(`${this.host}: nothing reached the gate within ${timeoutMs} ms`);
  }

  /** Lets the waiting call go on (and any later one: the gate is one-shot per arm). */
  async release(): Promise<void> {
    await sh(this.host, `touch ${DIR}/release`);
  }
}

/** Waits until no process on the host has `marker` in its command line (the orphaned script ended). */
export async function waitGone(host: string, marker: string, timeoutMs = 30_000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const out = await sh(
      host,
      `for p in /proc/[0-9]*; do [ "$p" = /proc/$$ ] && continue; tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -qF -- "$1" && echo \${p#/proc/}; done; :`,
      marker,
    );
    if (out.trim() === "") return Date.now() - t0;
    await sleep(25);
  }
  throw new Error(`${host}: a process with "${marker}" is still running after ${timeoutMs} ms`);
}

/** Waits until a script with `marker` in its command line waits for the host lock (flock of /run). */
export async function waitLockWaiter(host: string, marker: string, timeoutMs = 30_000): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const out = await sh(
      host,
      `for p in $(pgrep -x flock); do pp=$(awk '/^PPid:/ {print $2}' /proc/$p/status 2>/dev/null) || continue; tr '\\0' ' ' < /proc/$pp/cmdline 2>/dev/null | grep -qF -- "$1" && echo $p; done; :`,
      marker,
    );
    if (out.trim() !== "") return;
    await sleep(25);
  }
  throw new Error(`${host}: no script with "${marker}" waited for the host lock within ${timeoutMs} ms`);
}
