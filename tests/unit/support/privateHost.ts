// A throwaway "host" for unit tests of firewall steps: a private network namespace (its own nftables and
// iptables) and mount namespace with an empty /var/lib, so the probe and the apply scripts run for real
// without touching the machine.
import { spawn, spawnSync, SpawnSyncReturns } from "node:child_process";
import * as fs from "node:fs";
import { NetworkPaths, networkPaths } from "../../../provider/naming";
import { ObservedNetwork } from "../../../provider/observe/observed";
import { parseProbe } from "../../../provider/observe/parse";
import { probeArgs, PROBE_SCRIPT } from "../../../provider/ops/probe";
import { Action } from "../../../provider/ops/action";
import { renderApplyScript } from "../../../provider/ops/script";
import { NetworkSpec } from "../../../provider/model/network";
import { PortSpec } from "../../../provider/model/port";

export class PrivateHost {
  private constructor(readonly pid: number) {}

  static async start(): Promise<PrivateHost> {
    const p = spawn(
      "unshare",
      [
        "--net",
        "--mount",
        "--propagation",
        "private",
        "--fork",
        "sh",
        "-c",
        "mount -t tmpfs tmpfs /var/lib && mkdir /var/lib/virtnet && mount -t sysfs sysfs /sys && echo ready && exec sleep 600",
      ],
      { stdio: ["ignore", "pipe", "ignore"], detached: true },
    );
    await new Promise<void>((resolve, reject) => {
      p.stdout!.on("data", (d) => String(d).includes("ready") && resolve());
      p.on("exit", (code) => reject(new Error(`unshare exited with ${code}`)));
    });
    p.stdout!.destroy();
    p.unref();
    const children = fs.readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, "utf8").trim();
    return new PrivateHost(Number(children.split(/\s+/)[0]));
  }

  /** Runs a shell script inside the host's namespaces. */
  sh(script: string, args: string[] = []): SpawnSyncReturns<string> {
    return spawnSync(
      "nsenter",
      ["--target", String(this.pid), "--net", "--mount", "sh", "-c", script, "virtnet", ...args],
      { encoding: "utf8" },
    );
  }

  /** Like sh, but the script must succeed; returns its output. */
  must(script: string): string {
    const r = this.sh(script);
    if (r.status !== 0) throw new Error(`${script}: exit ${r.status}: ${r.stderr}`);
    return r.stdout;
  }

  observe(spec: NetworkSpec): ObservedNetwork {
    return this.observeWith(spec, {});
  }

  /** Like observe, with some of the network's paths replaced. */
  observeWith(spec: NetworkSpec, paths: Partial<NetworkPaths>): ObservedNetwork {
    const all = { ...networkPaths(spec.name), ...paths };
    const r = this.sh(PROBE_SCRIPT, probeArgs(spec.name, spec.bridge.name, all));
    if (r.status !== 0) throw new Error(`probe: ${r.stderr}`);
    return parseProbe(r.stdout, spec.name, spec.bridge.name);
  }

  /** The probe as a Port's change runs it: its network's bridge and directories, and its TAP and owner. */
  observePort(spec: PortSpec): ObservedNetwork {
    const r = this.sh(PROBE_SCRIPT, this.portArgs(spec));
    if (r.status !== 0) throw new Error(`probe: ${r.stderr}`);
    return parseProbe(r.stdout, spec.network, spec.bridge);
  }

  /** Runs a Port's actions the way the apply layer does; returns the exit code. */
  applyPort(spec: PortSpec, actions: Action[], failAfter = ""): SpawnSyncReturns<string> {
    const generation = this.observePort(spec).generation;
    return this.sh(renderApplyScript(actions, true), [...this.portArgs(spec), generation, failAfter]);
  }

  private portArgs(spec: PortSpec): string[] {
    return probeArgs(spec.network, spec.bridge, networkPaths(spec.network), "", {
      tap: spec.name,
      owner: spec.owner,
    });
  }

  /** Runs actions the way the apply layer does (lock, probe check, undo on failure); returns the exit code. */
  apply(spec: NetworkSpec, actions: Action[], failAfter = ""): SpawnSyncReturns<string> {
    return this.applyWith(spec, actions, this.observe(spec).generation, failAfter);
  }

  /** Like apply, with the generation token of an earlier probe. */
  applyWith(
    spec: NetworkSpec,
    actions: Action[],
    generation: string,
    failAfter = "",
  ): SpawnSyncReturns<string> {
    const args = probeArgs(spec.name, spec.bridge.name, networkPaths(spec.name));
    return this.sh(renderApplyScript(actions, true), [...args, generation, failAfter]);
  }

  /** The whole firewall state, as a snapshot compares it. */
  firewallState(): string {
    return this.must(
      "nft list ruleset; echo '## iptables'; iptables-save | sed '/^#/d'; echo '## ip6tables'; ip6tables-save | sed '/^#/d'",
    )
      .replace(/\[\d+:\d+\]/g, "")
      .replace(/counter packets \d+ bytes \d+/g, "counter");
  }

  /** Ends the namespaces' only process; unshare (the launcher) then exits by itself. */
  close(): void {
    try {
      process.kill(this.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}
