// `npm run up -- <program>` (and preview, refresh, destroy): runs a user's own Pulumi program against a lab
// host through the engine-path runner, without the Pulumi CLI. <program> is a directory holding index.ts or
// index.js, or such a file. The state stays in <program dir>/.virtnet-engine/state.json between runs.
import * as fs from "node:fs";
import * as path from "node:path";
import * as ts from "typescript";
import { DeploymentError, makeProjectDir, RunResult, TestStack } from "./engine";
import { labStatus, labUp, LabHost } from "../lab/lab";

const COMMANDS = ["up", "preview", "refresh", "destroy"] as const;
type Command = (typeof COMMANDS)[number];

function usage(): never {
  console.error(
    "usage: node dist/tests/engine/cli.js <up|preview|refresh|destroy> <program dir or file> [--host h1]",
  );
  process.exit(2);
}

function programFile(arg: string): string {
  const p = path.resolve(arg);
  if (fs.existsSync(p) && fs.statSync(p).isDirectory()) {
    for (const f of ["index.ts", "index.js"]) if (fs.existsSync(path.join(p, f))) return path.join(p, f);
    throw new Error(`${p} holds no index.ts or index.js`);
  }
  if (!fs.existsSync(p)) throw new Error(`${p} does not exist`);
  return p;
}

/** A TypeScript program runs as written: each .ts file is transpiled when required (no type check). */
function registerTypeScript(): void {
  require.extensions[".ts"] = (module: any, filename: string) => {
    const source = fs.readFileSync(filename, "utf8");
    const out = ts.transpileModule(source, {
      compilerOptions: {
        module: ts.ModuleKind.CommonJS,
        target: ts.ScriptTarget.ES2022,
        esModuleInterop: true,
      },
      fileName: filename,
    });
    module._compile(out.outputText, filename);
  };
}

async function labHost(name: string): Promise<LabHost> {
  let hosts: LabHost[];
  try {
    hosts = labStatus().hosts;
  } catch {
    hosts = (await labUp({ hosts: 2 }), labStatus().hosts);
  }
  const h = hosts.find((x) => x.name === name);
  if (!h) throw new Error(`no lab host ${name} (the lab has ${hosts.map((x) => x.name).join(", ")})`);
  return h;
}

function report(r: RunResult): void {
  for (const op of r.operations.filter((o) => o.dynamic))
    console.log(
      `  ${op.op.padEnd(7)} ${op.type.split(":").pop()} ${op.name}${op.error ? `: ${op.error}` : ""}`,
    );
}

async function main(): Promise<void> {
  const [command, target, ...rest] = process.argv.slice(2);
  if (!COMMANDS.includes(command as Command) || !target) usage();
  const hostName = rest[0] === "--host" && rest[1] ? rest[1] : "h1";
  const file = programFile(target);
  const stateFile = path.join(path.dirname(file), ".virtnet-engine", "state.json");
  const h = await labHost(hostName);
  const project = makeProjectDir();
  // The program's `import "pulumi-virtnet"` resolves through the project dir's node_modules (this repo).
  process.env.NODE_PATH = [path.join(project, "node_modules"), process.env.NODE_PATH]
    .filter(Boolean)
    .join(":");
  require("node:module").Module._initPaths();
  registerTypeScript();
  const stack = new TestStack({
    cwd: project,
    stateFile,
    config: {
      "virtnet:host": h.address,
      "virtnet:hostKey": h.hostKey,
      "virtnet:privateKey": { secret: fs.readFileSync(h.privateKeyPath, "utf8") },
    },
  });
  console.log(`${command} ${file} on lab host ${h.name} (${h.address}); state ${stateFile}`);
  try {
    const r =
      command === "up"
        ? await stack.up(file)
        : command === "preview"
          ? await stack.preview(file)
          : command === "refresh"
            ? await stack.refresh()
            : await stack.destroy();
    report(r);
    const outputs = (r as { outputs?: Record<string, unknown> }).outputs;
    if (outputs && Object.keys(outputs).length) console.log(JSON.stringify(outputs, null, 2));
  } catch (e) {
    if (e instanceof DeploymentError) report(e.result);
    throw e;
  } finally {
    fs.rmSync(project, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
  },
);
