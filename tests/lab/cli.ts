// `npm run lab -- <command>`: a thin CLI over tests/lab/lab.ts.
import { spawn } from "node:child_process";
import * as os from "node:os";
import {
  guestAdd,
  guestAddr,
  guestCommand,
  guestDel,
  guestDhcp,
  hostCommand,
  hostExecEnv,
  hostReboot,
  LabError,
  labDown,
  labEnv,
  labStatus,
  labUp,
  upstreamCommand,
} from "./lab";

const USAGE = `usage: npm run lab -- <command>
  up [--hosts N] [--uplinks 2]         start hosts h1..hN (default 2), with eth1 into a second upstream when
                                       --uplinks 2; no-op when already up like that
  status [--json]                      hosts, addresses, keys, users
  exec <host>|upstream -- <cmd...>     run a command inside a host's namespaces (or upstream's), no SSH
  reboot <host> [--init sshd|systemd]  restart a host: fresh network namespace, same /etc /var /home; with
                                       systemd as its init, Debian's units bring it up (a real boot)
  guest add <guest> <host> <bridge> [--mac MAC]
  guest addr <guest> <cidr> [gateway]
  guest dhcp <guest> [--timeout-ms N]  prints the lease as JSON
  guest exec <guest> -- <cmd...>
  guest del <guest>
  down                                 remove everything; exits non-zero listing leftovers

address plan: management 198.18.0.0/24 (root bridge vnl-mgmt .1, host i mgmt0 .(10+i), sshd port 22);
uplink 198.19.0.0/24 (upstream .1, host i eth0 .(10+i), default route via upstream); server 198.51.100.1`;

class UsageError extends Error {}

function afterDashDash(args: string[]): string[] {
  const i = args.indexOf("--");
  const cmd = i >= 0 ? args.slice(i + 1) : args;
  if (cmd.length === 0) throw new UsageError("missing command after --");
  return cmd;
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (v === undefined) throw new UsageError(`${name} needs a value`);
  args.splice(i, 2);
  return v;
}

function intOption(args: string[], name: string): number | undefined {
  const v = option(args, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`${name} needs a number`);
  return Number(v);
}

/** Runs argv with the terminal's stdio and resolves with its exit code (128+n when killed by signal n). */
function passthrough(argv: string[], env?: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: "inherit", env: env ?? process.env });
    child.on("error", (e) => {
      process.stderr.write(`${argv[0]}: ${e.message}\n`);
      resolve(127);
    });
    child.on("close", (code, signal) => {
      resolve(code ?? 128 + ((os.constants.signals as Record<string, number>)[signal ?? ""] ?? 0));
    });
  });
}

function printTable(): void {
  const s = labStatus();
  const rows = [["HOST", "ADDRESS", "UPLINK", "NAMESPACE", "PID", "HOST KEY"]];
  for (const h of s.hosts) {
    rows.push([
      h.name,
      `${h.address}:${h.port}`,
      h.uplinkAddress,
      h.namespace,
      String(h.pid),
      h.hostKeySha256,
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c])).join("  "));
  console.log(
    `\nupstream ${s.upstream.address} (namespace ${s.upstream.namespace}), server ${s.upstream.serverAddress}`,
  );
  if (s.upstream2)
    console.log(
      `upstream 2 ${s.upstream2.address} (namespace ${s.upstream2.namespace}, hosts' eth1 ${s.hosts.map((h) => h.uplink2!.address).join(", ")}), server ${s.upstream2.serverAddress}`,
    );
  console.log(`ssh: user root, key ${s.privateKeyPath}, known_hosts ${s.knownHostsPath}`);
  for (const u of s.users) {
    console.log(`user ${u.name}: password ${u.password}, ${u.sudo ? "passwordless sudo" : "no sudo"}`);
  }
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "up": {
      const hosts = intOption(rest, "--hosts");
      const uplinks = intOption(rest, "--uplinks");
      if (uplinks !== undefined && uplinks !== 1 && uplinks !== 2)
        throw new LabError("--uplinks must be 1 or 2");
      const r = await labUp({ hosts, uplinks });
      const t = Object.entries(r.timings)
        .map(([k, v]) => `${k} ${v} ms`)
        .join(", ");
      console.log(
        r.reused
          ? `lab already up with ${r.status.hosts.length} hosts (${t})`
          : `lab up: ${r.status.hosts.map((h) => `${h.name} ${h.address}`).join(", ")} (${t})`,
      );
      return 0;
    }
    case "status":
      if (rest.includes("--json")) console.log(JSON.stringify(labStatus(), null, 2));
      else printTable();
      return 0;
    case "exec": {
      const [target] = rest;
      if (!target || target === "--") throw new UsageError("exec needs a host (or upstream)");
      const command = afterDashDash(rest.slice(1));
      if (target === "upstream") return passthrough(upstreamCommand(command), labEnv());
      return passthrough(hostCommand(target, command), hostExecEnv(target));
    }
    case "reboot": {
      const init = option(rest, "--init");
      if (init !== undefined && init !== "sshd" && init !== "systemd")
        throw new UsageError("--init is sshd or systemd");
      if (!rest[0]) throw new UsageError("reboot needs a host");
      const t0 = Date.now();
      const h = await hostReboot(rest[0], { init });
      console.log(`${h.name} rebooted into ${h.init} (pid ${h.pid}) in ${Date.now() - t0} ms`);
      return 0;
    }
    case "guest":
      return guest(rest);
    case "down": {
      const t0 = Date.now();
      const left = await labDown();
      if (left.length) {
        console.error(`lab down: leftovers:\n  ${left.join("\n  ")}`);
        return 1;
      }
      console.log(`lab down: nothing left (${Date.now() - t0} ms)`);
      return 0;
    }
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command ${cmd}`);
  }
}

async function guest(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "add": {
      const mac = option(rest, "--mac");
      const [g, host, bridge] = rest;
      if (!g || !host || !bridge || rest.length > 3)
        throw new UsageError("guest add <guest> <host> <bridge>");
      const r = await guestAdd(g, host, bridge, { mac });
      console.log(
        `guest ${g} on ${host}:${bridge} (host interface ${r.hostIfName}, namespace ${r.namespace})`,
      );
      return 0;
    }
    case "addr": {
      const [g, cidr, gw] = rest;
      if (!g || !cidr || rest.length > 3) throw new UsageError("guest addr <guest> <cidr> [gateway]");
      await guestAddr(g, cidr, gw);
      return 0;
    }
    case "dhcp": {
      const timeoutMs = intOption(rest, "--timeout-ms");
      const [g] = rest;
      if (!g || rest.length > 1) throw new UsageError("guest dhcp <guest> [--timeout-ms N]");
      console.log(JSON.stringify(await guestDhcp(g, { timeoutMs })));
      return 0;
    }
    case "exec": {
      const [g] = rest;
      if (!g || g === "--") throw new UsageError("guest exec <guest> -- <cmd...>");
      return passthrough(guestCommand(g, afterDashDash(rest.slice(1))), labEnv());
    }
    case "del": {
      const [g] = rest;
      if (!g) throw new UsageError("guest del <guest>");
      if (!(await guestDel(g))) console.log(`guest ${g} was not there`);
      return 0;
    }
    default:
      throw new UsageError(`unknown guest command ${sub ?? ""}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError) {
      console.error(`lab: ${e.message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else if (e instanceof LabError) {
      console.error(`lab: ${e.message}`);
      process.exitCode = 1;
    } else {
      console.error(e);
      process.exitCode = 1;
    }
  },
);
