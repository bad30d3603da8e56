// Deploys the quickstart to a lab host, shows a guest's DHCP lease and a masqueraded ping, and cleans up.
// With the Pulumi CLI installed it runs `pulumi up` through the Automation API; without it, the engine-path
// runner drives Pulumi's own dynamic-provider plugin over gRPC exactly as the engine does.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { TestStack } from "../tests/engine/engine";
import {
  guestAdd,
  guestDel,
  guestDhcp,
  guestExec,
  labDown,
  labStatus,
  labUp,
  LabHost,
} from "../tests/lab/lab";
import { captureUpstream } from "../tests/e2e/support";

const root = path.resolve(__dirname, "../..");
const say = (s: string) => console.log(`\n== ${s}`);

function hasPulumiCli(): boolean {
  try {
    execFileSync("pulumi", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

interface Deployment {
  up(): Promise<Record<string, unknown>>;
  destroy(): Promise<void>;
}

function config(h: LabHost) {
  return { host: h.address, hostKey: h.hostKey, privateKey: fs.readFileSync(h.privateKeyPath, "utf8") };
}

async function viaAutomationApi(h: LabHost): Promise<Deployment> {
  const auto = await import("@pulumi/pulumi/automation");
  const backend = fs.mkdtempSync(path.join(os.tmpdir(), "virtnet-demo-state-"));
  const stack = await auto.LocalWorkspace.createOrSelectStack(
    { stackName: "demo", workDir: root },
    { envVars: { PULUMI_BACKEND_URL: `file://${backend}`, PULUMI_CONFIG_PASSPHRASE: "virtnet-demo" } },
  );
  const c = config(h);
  await stack.setAllConfig({
    "virtnet:host": { value: c.host },
    "virtnet:hostKey": { value: c.hostKey },
    "virtnet:privateKey": { value: c.privateKey, secret: true },
  });
  return {
    async up() {
      const r = await stack.up({ onOutput: (o) => process.stdout.write(o) });
      return Object.fromEntries(Object.entries(r.outputs).map(([k, v]) => [k, v.value]));
    },
    async destroy() {
      await stack.destroy({ onOutput: (o) => process.stdout.write(o) });
      await stack.workspace.removeStack("demo");
      fs.rmSync(backend, { recursive: true, force: true });
    },
  };
}

function viaEnginePath(h: LabHost): Deployment {
  const c = config(h);
  const stack = new TestStack({
    cwd: root,
    config: {
      "virtnet:host": c.host,
      "virtnet:hostKey": c.hostKey,
      "virtnet:privateKey": { secret: c.privateKey },
    },
  });
  const program = path.join(root, "dist/examples/quickstart/index.js");
  return {
    async up() {
      const r = await stack.up(program);
      for (const op of r.operations.filter((o) => o.dynamic))
        console.log(`  ${op.op.padEnd(7)} ${op.type} ${op.name}`);
      return r.outputs;
    },
    async destroy() {
      const r = await stack.destroy();
      for (const op of r.operations.filter((o) => o.dynamic))
        console.log(`  ${op.op.padEnd(7)} ${op.type} ${op.name}`);
    },
  };
}

async function main(): Promise<void> {
  say("bringing up the local lab (network namespaces, each with its own sshd)");
  await labUp({ hosts: 1 });
  const h = labStatus().hosts[0];
  console.log(
    `  host ${h.name}: ssh root@${h.address} (host key ${h.hostKeySha256}), uplink ${h.uplinkAddress}`,
  );

  const cli = hasPulumiCli();
  say(
    cli
      ? "deploying examples/quickstart with `pulumi up` (Automation API)"
      : "deploying examples/quickstart through the engine-path runner (no Pulumi CLI here): " +
          "Pulumi's own dynamic-provider plugin, driven over gRPC as the engine does",
  );
  const deployment = cli ? await viaAutomationApi(h) : viaEnginePath(h);
  let guest = false;
  try {
    const outputs = await deployment.up();
    console.log(
      `  bridge name: ${outputs.bridgeName}\n  gateway IP:  ${outputs.gatewayIp}\n  subnet:      ${outputs.cidr}`,
    );

    say("a guest on the bridge asks for an address by DHCP");
    await guestAdd("demo", h.name, String(outputs.bridgeName));
    guest = true;
    const started = Date.now();
    const lease = await guestDhcp("demo", { timeoutMs: 15000 });
    console.log(
      `  lease: ${lease.ip}/${lease.prefix}, router ${lease.router}, DNS ${lease.dns.join(",")} (${Date.now() - started} ms)`,
    );

    say(
      "the guest pings the internet (198.51.100.1 in the lab's upstream); upstream sees the source address:",
    );
    const seen = await captureUpstream("icmp and dst host 198.51.100.1", () =>
      guestExec("demo", ["busybox", "ping", "-c", "1", "-W", "2", "198.51.100.1"]),
    );
    console.log(`  ${seen.trim() || "(nothing captured)"}`);
    console.log(
      `  masqueraded behind the host's uplink ${h.uplinkAddress}: ${seen.includes(`${h.uplinkAddress} >`)}`,
    );
  } finally {
    if (guest) await guestDel("demo");
    say("destroying the stack");
    await deployment.destroy();
    say("tearing the lab down");
    const leftovers = await labDown();
    console.log(leftovers.length ? `  leftovers: ${leftovers.join(", ")}` : "  nothing left behind");
  }
}

main().catch((e) => {
  console.error(`demo failed: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
});
