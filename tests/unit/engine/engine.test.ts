// The mini engine against the REAL dynamic-provider plugin process: every test below starts the plugin that
// ships in @pulumi/pulumi and drives it over gRPC as `pulumi up/preview/refresh/destroy` would.
import { expect } from "chai";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import {
  DeploymentError,
  Program,
  TestStack,
  UpResult,
  captureRegistrations,
  findOp,
  findResource,
  makeProjectDir,
  runProgram,
} from "../../engine/engine";
import { ProviderPlugin, UNKNOWN, isSecret } from "../../engine/plugin";
import { ConfiguredResource, FileResource } from "../../engine/fixtures/file";
import { readJournal } from "../../engine/fixtures/impl";

describe("engine path: mini engine + real dynamic-provider plugin", function () {
  this.timeout(60000);

  let projectDir: string;
  let work: string;
  const pids: number[] = [];

  before(() => {
    projectDir = makeProjectDir();
  });

  beforeEach(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "virtnet-engine-work-"));
  });

  afterEach(() => {
    fs.rmSync(work, { recursive: true, force: true });
  });

  after(() => {
    fs.rmSync(projectDir, { recursive: true, force: true });
  });

  function track<T extends { pluginPid?: number }>(r: T): T {
    if (r.pluginPid) pids.push(r.pluginPid);
    return r;
  }

  function newStack(extra: Partial<ConstructorParameters<typeof TestStack>[0]> = {}): TestStack {
    return new TestStack({ cwd: projectDir, stateFile: path.join(work, "state.json"), ...extra });
  }

  const fileProgram =
    (content: string, name = "a.txt", extra: Record<string, unknown> = {}): Program =>
    async () => {
      const f = new FileResource("f", { dir: work, name, content, ...extra });
      return { path: f.path, size: f.size };
    };

  const methods = (dir: string) => readJournal(dir).map((e) => e.method);

  it("create, then no-op, then update in place, then replace, then destroy", async () => {
    const stack = newStack();

    const r1 = track(await stack.up(fileProgram("hello")));
    const c = findOp(r1, "f")!;
    expect(c.op).to.equal("create");
    expect(c.calls).to.deep.equal(["check", "create"]);
    expect(fs.readFileSync(path.join(work, "a.txt"), "utf8")).to.equal("hello");
    expect(r1.outputs).to.deep.equal({ path: path.join(work, "a.txt"), size: 5 });
    const s1 = findResource(stack.state, "f")!;
    expect(s1.id).to.equal(path.join(work, "a.txt"));
    // state holds the checked inputs (check filled in the default mode) and the outputs, both with __provider.
    expect(s1.inputs.mode).to.equal("0644");
    expect(s1.inputs.__provider).to.be.a("string");
    expect(s1.outputs.__provider).to.equal(s1.inputs.__provider);
    expect(JSON.parse(fs.readFileSync(path.join(work, "state.json"), "utf8")).resources).to.have.length(2);

    const r2 = track(await stack.up(fileProgram("hello")));
    const same = findOp(r2, "f")!;
    expect(same.op).to.equal("same");
    expect(same.calls).to.deep.equal(["check", "diff"]);
    expect(same.diff).to.deep.equal({
      changes: "none",
      replaces: [],
      deleteBeforeReplace: false,
      changedKeys: [],
    });
    expect(r2.summary).to.deep.equal({ same: 1 });

    const r3 = track(await stack.up(fileProgram("bye")));
    const upd = findOp(r3, "f")!;
    expect(upd.op).to.equal("update");
    expect(upd.calls).to.deep.equal(["check", "diff", "update"]);
    expect(upd.diff!.changes).to.equal("some");
    expect(upd.diff!.changedKeys).to.deep.equal(["content"]);
    expect(upd.id).to.equal(s1.id);
    expect(fs.readFileSync(path.join(work, "a.txt"), "utf8")).to.equal("bye");
    expect(findResource(stack.state, "f")!.outputs.size).to.equal(3);

    const r4 = track(await stack.up(fileProgram("bye", "b.txt")));
    const rep = findOp(r4, "f")!;
    expect(rep.op).to.equal("replace");
    // create-before-delete; the engine re-checks with no olds before creating the replacement.
    expect(rep.calls).to.deep.equal(["check", "diff", "check", "create", "delete"]);
    expect(rep.diff!.replaces).to.deep.equal(["name"]);
    expect(fs.existsSync(path.join(work, "a.txt"))).to.equal(false);
    expect(findResource(stack.state, "f")!.id).to.equal(path.join(work, "b.txt"));

    const r5 = track(await stack.up(fileProgram("bye", "c.txt", { dbr: true })));
    const dbr = findOp(r5, "f")!;
    expect(dbr.op).to.equal("replace");
    expect(dbr.diff!.deleteBeforeReplace).to.equal(true);
    expect(dbr.calls).to.deep.equal(["check", "diff", "check", "delete", "create"]);
    expect(fs.readdirSync(work).filter((f) => f.endsWith(".txt"))).to.deep.equal(["c.txt"]);

    // The provider saw exactly the engine's sequence of calls.
    expect(methods(work)).to.deep.equal([
      ...["check", "create"],
      ...["check", "diff"],
      ...["check", "diff", "update"],
      ...["check", "diff", "check", "create", "delete"],
      ...["check", "diff", "check", "delete", "create"],
    ]);

    const d = track(await stack.destroy());
    expect(findOp(d, "f")!.calls).to.deep.equal(["delete"]);
    expect(stack.state.resources).to.deep.equal([]);
    expect(fs.readdirSync(work).filter((f) => f.endsWith(".txt"))).to.deep.equal([]);
  });

  it("outputs flow into dependent inputs; unregistered resources are deleted in reverse order", async () => {
    const stack = newStack();
    const r1 = track(
      await stack.up(async () => {
        const a = new FileResource("a", { dir: work, name: "a.txt", content: "A" });
        const b = new FileResource("b", { dir: work, name: "b.txt", content: a.sha256 });
        const c = new FileResource("c", { dir: work, name: "c.txt", content: b.sha256 });
        return { c: c.content };
      }),
    );
    const creates = readJournal(work).filter((e) => e.method === "create");
    expect(creates.map((e) => e.inputs.name)).to.deep.equal(["a.txt", "b.txt", "c.txt"]);
    const shaA = findResource(stack.state, "a")!.outputs.sha256;
    expect(creates[1].inputs.content).to.equal(shaA);
    expect(r1.outputs.c).to.equal(findResource(stack.state, "b")!.outputs.sha256);

    const r2 = track(await stack.up(async () => ({})));
    const deletes = r2.operations.filter((o) => o.op === "delete" && o.dynamic);
    expect(deletes.map((o) => o.name)).to.deep.equal(["c", "b", "a"]);
    expect(deletes.every((o) => o.calls.join() === "delete")).to.equal(true);
    expect(stack.state.resources.map((r) => r.type)).to.deep.equal(["pulumi:pulumi:Stack"]);
  });

  it("refresh detects an out-of-band change, and a resource gone out of band", async () => {
    const stack = newStack();
    track(await stack.up(fileProgram("hello")));
    const p = path.join(work, "a.txt");

    const clean = track(await stack.refresh());
    expect(clean.changes.map((c) => c.op)).to.deep.equal(["same"]);

    fs.writeFileSync(p, "tampered");
    const r = track(await stack.refresh());
    expect(r.changes).to.have.length(1);
    const ch = r.changes[0];
    expect(ch.op).to.equal("update");
    expect(ch.changedKeys).to.deep.equal(["content", "sha256", "size"]);
    expect(ch.outputsBefore.content).to.equal("hello");
    expect(ch.outputsAfter!.content).to.equal("tampered");
    // read() returned inputs too, so the stored inputs follow the drift (pulumi/pulumi#13839).
    expect(ch.inputsAfter!.content).to.equal("tampered");
    expect(findResource(stack.state, "f")!.outputs.content).to.equal("tampered");
    expect(methods(work).slice(-1)).to.deep.equal(["read"]);

    // The next up puts the declared content back with an in-place update.
    const back = track(await stack.up(fileProgram("hello")));
    expect(findOp(back, "f")!.op).to.equal("update");
    expect(fs.readFileSync(p, "utf8")).to.equal("hello");

    fs.rmSync(p);
    const gone = track(await stack.refresh());
    expect(gone.changes[0].op).to.equal("delete");
    expect(findResource(stack.state, "f")).to.equal(undefined);
  });

  it("secrets: unwrapped at the provider, same-name output stored secret, nothing secret in __provider", async () => {
    const stack = newStack();
    const token = "s3cr3t-t0ken-value";
    const r = track(
      await stack.up(async () => {
        const f = new FileResource("f", {
          dir: work,
          name: "a.txt",
          content: "x",
          secretToken: pulumi.secret(token),
        });
        const g = new FileResource(
          "g",
          { dir: work, name: "g.txt", content: "y", secretToken: pulumi.secret(token) },
          { additionalSecretOutputs: ["tokenLength"] },
        );
        return { token: f.secretToken, len: f.tokenLength, glen: g.tokenLength };
      }),
    );
    // On the wire from the program: a secret wrapper; at the provider: the plain value.
    const reg = r.registrations.find((x) => x.name === "f")!;
    expect(isSecret(reg.inputs.secretToken)).to.equal(true);
    const check = readJournal(work).find((e) => e.method === "check")!;
    expect(check.news.secretToken).to.equal(token);
    const create = readJournal(work).find((e) => e.method === "create")!;
    expect(create.inputs.secretToken).to.equal(token);

    const f = findResource(stack.state, "f")!;
    expect(isSecret(f.inputs.secretToken)).to.equal(true);
    expect(isSecret(f.outputs.secretToken)).to.equal(true); // same name as a secret input: re-marked
    expect(f.outputs.secretToken.value).to.equal(token);
    expect(isSecret(f.outputs.tokenLength)).to.equal(false); // derived under another name: stored in clear
    expect(f.outputs.tokenLength).to.equal(token.length);
    expect(isSecret(findResource(stack.state, "g")!.outputs.tokenLength)).to.equal(true); // additionalSecretOutputs

    // The program sees secret outputs as secrets; the stack outputs keep the mark.
    expect(isSecret(r.outputs.token)).to.equal(true);
    expect(r.outputs.len).to.equal(token.length);
    expect(isSecret(r.outputs.glen)).to.equal(true);

    // The serialized provider is small, plain text, and carries no secret.
    const prov = reg.inputs.__provider;
    expect(prov).to.be.a("string");
    expect(prov.length).to.be.lessThan(4000);
    expect(prov).to.not.include(token);
    expect(prov).to.include('require("pulumi-virtnet/dist/tests/engine/fixtures/impl.js")');
  });

  it("a provider with configure() receives the stack config, a secret config value too", async () => {
    const stack = newStack({
      project: "virtnet-test",
      config: {
        "virtnet-test:greeting": "hello",
        "virtnet:host": "host-1",
        "virtnet:password": { secret: "pa55word" },
      },
    });
    const r = track(
      await stack.up(async () => {
        const c = new ConfiguredResource("c", { dir: work, name: "configured" });
        // The program sees the same config, the secret one as a secret.
        const cfg = new pulumi.Config("virtnet");
        return { seen: c.seen, host: cfg.require("host"), password: cfg.requireSecret("password") };
      }),
    );
    const seen = findResource(stack.state, "c")!.outputs.seen;
    expect(seen).to.deep.equal({
      greeting: "hello",
      host: "host-1",
      passwordLength: 8,
      passwordSha256: require("crypto").createHash("sha256").update("pa55word").digest("hex"),
    });
    expect(r.outputs.host).to.equal("host-1");
    expect(isSecret(r.outputs.password)).to.equal(true);
    // Configure came first (a configure()-provider breaks when check comes before Configure).
    expect(r.timing.rpc[0].method).to.equal("configure");
    expect(r.timing.rpc.map((c) => c.method)).to.deep.equal(["configure", "check", "create"]);
  });

  it("preview: unknown inputs reach check as the unknown sentinel; no create/update calls; state untouched", async () => {
    const stack = newStack();
    const program = async () => {
      const a = new FileResource("a", { dir: work, name: "a.txt", content: "A" });
      const b = new FileResource("b", { dir: work, name: "b.txt", content: a.sha256 });
      return { b: b.content };
    };
    const p = track(await stack.preview(program));
    expect(findOp(p, "a")!.op).to.equal("create");
    expect(findOp(p, "b")!.op).to.equal("create");
    expect(p.operations.every((o) => !o.calls.includes("create"))).to.equal(true);
    expect(findOp(p, "b")!.checkedInputs!.content).to.equal(UNKNOWN);
    const checks = readJournal(work).filter((e) => e.method === "check");
    expect(checks.map((e) => e.news.name)).to.deep.equal(["a.txt", "b.txt"]);
    expect(checks[1].news.content).to.equal(UNKNOWN);
    expect(checks[1].unknownKeys).to.deep.equal(["content"]);
    expect(methods(work)).to.deep.equal(["check", "check"]);
    expect(fs.existsSync(path.join(work, "a.txt"))).to.equal(false);
    expect(stack.state.resources).to.deep.equal([]);

    // Against existing state: the plan shows the update and its diff, nothing is changed.
    track(await stack.up(program));
    const before = JSON.stringify(stack.state);
    const p2 = track(
      await stack.preview(async () => {
        const a = new FileResource("a", { dir: work, name: "a.txt", content: "A2" });
        const b = new FileResource("b", { dir: work, name: "b.txt", content: a.sha256 });
        return { b: b.content };
      }),
    );
    const a2 = findOp(p2, "a")!;
    expect(a2.op).to.equal("update");
    expect(a2.calls).to.deep.equal(["check", "diff"]);
    expect(a2.diff!.changedKeys).to.deep.equal(["content"]);
    expect(a2.checkedInputs!.content).to.equal("A2");
    // a.sha256 is not an input of a: unknown in preview once a is updating, so b's diff sees the sentinel.
    const b2 = findOp(p2, "b")!;
    expect(b2.checkedInputs!.content).to.equal(UNKNOWN);
    expect(b2.op).to.equal("update");
    expect(JSON.stringify(stack.state)).to.equal(before);
    expect(fs.readFileSync(path.join(work, "a.txt"), "utf8")).to.equal("A");
  });

  it("a create that throws reports the provider's error text and leaves nothing in state", async () => {
    const stack = newStack();
    let err: DeploymentError | undefined;
    try {
      await stack.up(fileProgram("x", "a.txt", { failOn: "create" }));
    } catch (e) {
      err = e as DeploymentError;
    }
    expect(err).to.be.instanceOf(DeploymentError);
    track(err!.result);
    expect(err!.message).to.include("fixture: create failed on purpose");
    expect(findOp(err!.result, "f")!.error).to.include("fixture: create failed on purpose");
    expect(findResource(stack.state, "f")).to.equal(undefined);
  });

  it("a partial create keeps the resource with its init errors; the next up retries with an update", async () => {
    const stack = newStack();
    let err: DeploymentError | undefined;
    try {
      await stack.up(fileProgram("x", "a.txt", { failOn: "create-partial" }));
    } catch (e) {
      err = e as DeploymentError;
    }
    expect(err).to.be.instanceOf(DeploymentError);
    track(err!.result);
    expect(err!.message).to.include("resource created but failed to initialize");
    expect(err!.message).to.include("fixture: created but failed to initialize");
    const f = findResource(stack.state, "f")!;
    expect(f.id).to.equal(path.join(work, "a.txt"));
    expect(f.initErrors).to.deep.equal(["fixture: post-create step failed"]);

    const r = track(await stack.up(fileProgram("x", "a.txt", { failOn: "create-partial" })));
    const op = findOp(r, "f")!;
    expect(op.diff!.changes).to.equal("none");
    expect(op.op).to.equal("update");
    expect(findResource(stack.state, "f")!.initErrors).to.equal(undefined);
  });

  it("check failures fail the deployment with the property and reason", async () => {
    const stack = newStack();
    let err: DeploymentError | undefined;
    try {
      await stack.up(fileProgram("x", "bad/name"));
    } catch (e) {
      err = e as DeploymentError;
    }
    expect(err).to.be.instanceOf(DeploymentError);
    track(err!.result);
    expect(err!.message).to.include("check failed: name: name must not contain '/'");
    expect(findOp(err!.result, "f")!.calls).to.deep.equal(["check"]);
  });

  it("runs a program module afresh each time, with its own config, and does not leak between runs", async () => {
    const mod = path.join(__dirname, "..", "..", "engine", "fixtures", "program.js");
    const stack = newStack({ project: "modproj", stack: "dev", config: { "fixture:dir": work } });
    const r1 = track(await stack.up(mod));
    expect(r1.outputs).to.deep.equal({
      path: path.join(work, "module.txt"),
      project: "modproj",
      stack: "dev",
    });
    expect(findResource(stack.state, "from-module")!.urn).to.equal(
      "urn:pulumi:dev::modproj::pulumi:pulumi:Stack$pulumi-nodejs:dynamic/fixture:File::from-module",
    );
    const r2 = track(await stack.up(mod, { config: { "fixture:dir": work, "fixture:content": "changed" } }));
    expect(findOp(r2, "from-module")!.op).to.equal("update");

    // A later run in another project sees none of that run's config, stack or registrations.
    const other = await captureRegistrations(async () => ({
      dir: new pulumi.Config("fixture").get("dir") ?? "none",
      project: pulumi.getProject(),
    }));
    expect(other.outputs).to.deep.equal({ dir: "none", project: "project" });
    expect(other.registrations.map((x) => x.type)).to.deep.equal(["pulumi:pulumi:Stack"]);
  });

  it("captureRegistrations shows raw inputs and the serialized provider without starting a plugin", async () => {
    const before = ProviderPlugin.liveCount();
    const { registrations } = await captureRegistrations(async () => {
      new FileResource("f", {
        dir: work,
        name: "a.txt",
        content: "x",
        secretToken: pulumi.secret("zzz-secret"),
      });
      return {};
    });
    expect(ProviderPlugin.liveCount()).to.equal(before);
    const f = registrations.find((x) => x.name === "f")!;
    expect(f.type).to.equal("pulumi-nodejs:dynamic/fixture:File");
    expect(f.custom).to.equal(true);
    expect(Object.keys(f.inputs).sort()).to.deep.equal([
      "__provider",
      "content",
      "dir",
      "name",
      "secretToken",
    ]);
    expect(isSecret(f.inputs.secretToken)).to.equal(true);
    expect(f.inputs.__provider).to.not.include("zzz-secret");
    expect(readJournal(work)).to.deep.equal([]);
  });

  it("a failed get that a resource's inputs and the stack outputs wait for fails the run, never hangs it", async () => {
    // The read finds nothing, so the dependant's inputs reject: the SDK never resolves its outputs, and the
    // error escapes as an unhandled rejection. The run ends with it and closes its plugin.
    const gone = path.join(work, "gone.txt");
    const err = await newStack()
      .up(() => {
        const src = FileResource.get("src", gone);
        const copy = new FileResource("copy", { dir: work, name: "b.txt", content: src.content });
        return { size: copy.size };
      })
      .then(
        () => undefined,
        (e) => e,
      );
    expect(err, "the up should fail").to.be.instanceOf(DeploymentError);
    expect(err.message).to.include(`resource '${gone}' does not exist`);
    track(err.result);
    expect(ProviderPlugin.liveCount()).to.equal(0);
  });

  it("runProgram: one-shot up of an inline program with timing", async () => {
    const r: UpResult = track(
      await runProgram(
        async () => {
          const f = new FileResource("quick", { dir: work, name: "q.txt", content: "q" });
          return { id: f.id };
        },
        { cwd: projectDir },
      ),
    );
    expect(r.outputs.id).to.equal(path.join(work, "q.txt"));
    expect(r.timing.pluginStartMs).to.be.greaterThan(0);
    expect(r.timing.rpc.map((c) => c.method)).to.deep.equal(["configure", "check", "create"]);
    expect(r.state.resources.map((x) => x.type)).to.deep.equal([
      "pulumi:pulumi:Stack",
      "pulumi-nodejs:dynamic/fixture:File",
    ]);
  });

  it("leaves no plugin process behind", () => {
    // Holds when run alone too (--grep): then no run started a plugin and both lists are empty.
    expect(ProviderPlugin.liveCount()).to.equal(0);
    expect(pids.filter((pid) => ProviderPlugin.groupAlive(pid))).to.deep.equal([]);
  });
});
