// Measures the engine path's fixed costs: plugin start (sh wrapper vs node directly) and per-call gRPC latency
// against the fixture provider. Run: `npx tsc -b && node dist/tests/engine/timing.js [rounds]`.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { captureRegistrations, makeProjectDir, runProgram } from "./engine";
import { ProviderPlugin } from "./plugin";
import { FileResource } from "./fixtures/file";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 20);
  const projectDir = makeProjectDir();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "virtnet-timing-"));
  try {
    const { registrations } = await captureRegistrations(async () => {
      new FileResource("f", { dir: work, name: "x", content: "" });
      return {};
    });
    const provider = registrations.find((r) => r.custom)!.inputs.__provider as string;
    console.log(`__provider: ${provider.length} bytes`);

    for (const launcher of ["wrapper", "node"] as const) {
      const starts: number[] = [];
      for (let i = 0; i < 3; i++) {
        const p = await ProviderPlugin.start({ cwd: projectDir, launcher });
        starts.push(p.startMs);
        await p.close();
      }
      console.log(
        `plugin start (${launcher}): median ${median(starts).toFixed(0)} ms of ${starts.map((s) => s.toFixed(0))}`,
      );
    }

    const p = await ProviderPlugin.start({ cwd: projectDir, launcher: "node" });
    await p.configure({}, {});
    const urn = "urn:pulumi:stack::project::pulumi-nodejs:dynamic/fixture:File::f";
    for (let i = 0; i < rounds; i++) {
      const news = { __provider: provider, dir: work, name: `f${i}.txt`, content: "x" };
      const c = await p.check(urn, {}, news);
      const r = await p.create(urn, c.inputs);
      await p.diff(r.id, urn, r.properties, c.inputs, c.inputs);
      await p.read(r.id, urn, r.properties, c.inputs);
      const u = await p.update(r.id, urn, r.properties, { ...c.inputs, content: "y" }, c.inputs);
      await p.delete(r.id, urn, u.properties, c.inputs);
    }
    await p.close();
    const byMethod = new Map<string, number[]>();
    for (const c of p.calls) byMethod.set(c.method, [...(byMethod.get(c.method) ?? []), c.ms]);
    for (const [m, ms] of byMethod) {
      console.log(
        `${m.padEnd(10)} n=${String(ms.length).padStart(3)} median ${median(ms).toFixed(2)} ms, max ${Math.max(...ms).toFixed(2)} ms`,
      );
    }

    const t0 = Date.now();
    const r = await runProgram(
      async () => {
        const fs1 = Array.from(
          { length: 10 },
          (_, i) => new FileResource(`r${i}`, { dir: work, name: `r${i}.txt`, content: "z" }),
        );
        return { n: fs1.length };
      },
      { cwd: projectDir },
    );
    console.log(
      `up of 10 resources: ${Date.now() - t0} ms total (plugin start ${r.timing.pluginStartMs?.toFixed(0)} ms, program ${r.timing.programMs} ms)`,
    );
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(projectDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
