// ProviderPlugin alone: the real plugin process, called method by method.
import { expect } from "chai";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { captureRegistrations, makeProjectDir, repoRoot } from "../../engine/engine";
import {
  PluginError,
  ProviderPlugin,
  UNKNOWN,
  fromStruct,
  isSecret,
  secret,
  stripSecrets,
  toStruct,
} from "../../engine/plugin";
import { ConfiguredResource, FileResource } from "../../engine/fixtures/file";
import { readJournal } from "../../engine/fixtures/impl";

const URN = "urn:pulumi:stack::project::pulumi-nodejs:dynamic/fixture:File::f";

async function providerText(make: () => void): Promise<string> {
  const { registrations } = await captureRegistrations(async () => {
    make();
    return {};
  });
  return registrations.find((r) => r.custom)!.inputs.__provider;
}

describe("engine path: ProviderPlugin (real plugin process over gRPC)", function () {
  this.timeout(60000);

  let projectDir: string;
  let work: string;
  let fileProvider: string;
  let configuredProvider: string;
  const started: ProviderPlugin[] = [];

  async function start(
    extra: Partial<Parameters<typeof ProviderPlugin.start>[0]> = {},
  ): Promise<ProviderPlugin> {
    const p = await ProviderPlugin.start({ cwd: projectDir, ...extra });
    started.push(p);
    return p;
  }

  before(async () => {
    projectDir = makeProjectDir();
    fileProvider = await providerText(() => new FileResource("f", { dir: "/", name: "x", content: "" }));
    configuredProvider = await providerText(() => new ConfiguredResource("c", { dir: "/", name: "x" }));
  });

  beforeEach(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "virtnet-plugin-work-"));
  });

  afterEach(async () => {
    for (const p of started.splice(0)) await p.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  after(() => {
    fs.rmSync(projectDir, { recursive: true, force: true });
  });

  it("Struct conversion keeps secret wrappers and the unknown sentinel; stripSecrets removes wrappers", () => {
    const v = { a: secret("s"), b: [1, secret({ c: true })], u: UNKNOWN, n: null };
    expect(fromStruct(toStruct(v))).to.deep.equal(v);
    expect(stripSecrets({ ...v, gone: undefined })).to.deep.equal({
      a: "s",
      b: [1, { c: true }],
      u: UNKNOWN,
      n: null,
    });
    expect(() => toStruct({ x: undefined })).to.throw(/Unexpected struct type/);
  });

  it("starts through the sh wrapper, prints its port, answers Configure like the engine expects", async () => {
    const p = await start();
    expect(p.port).to.be.greaterThan(0);
    expect(p.startMs).to.be.greaterThan(0);
    expect(await p.getPluginInfo()).to.deep.equal({
      version: require("@pulumi/pulumi/package.json").version,
    });
    const proto = await p.configure({}, {});
    expect(proto).to.deep.equal({
      acceptSecrets: false,
      supportsPreview: false,
      acceptResources: false,
      acceptOutputs: false,
    });
    const pid = p.pid;
    await p.close();
    expect(ProviderPlugin.groupAlive(pid)).to.equal(false);
  });

  it("check/create/diff/read/update/delete: secrets stripped before sending, values as the provider returns", async () => {
    const p = await start({ launcher: "node" });
    await p.configure({}, {});
    const news = {
      __provider: fileProvider,
      dir: work,
      name: "a.txt",
      content: "hi",
      secretToken: secret("tok"),
    };
    const checked = await p.check(URN, {}, news);
    expect(checked.failures).to.deep.equal([]);
    // The plugin never saw the wrapper, so what it returns is plain; the engine re-marks secrets itself.
    expect(checked.inputs.secretToken).to.equal("tok");
    expect(checked.inputs.mode).to.equal("0644");
    expect(readJournal(work)[0].news.secretToken).to.equal("tok");

    const created = await p.create(URN, checked.inputs);
    expect(created.id).to.equal(path.join(work, "a.txt"));
    expect(created.properties.__provider).to.equal(fileProvider);
    expect(created.properties.sha256).to.have.length(64);

    const none = await p.diff(created.id, URN, created.properties, checked.inputs, checked.inputs);
    expect(none).to.include({ changes: "none", deleteBeforeReplace: false, hasDetailedDiff: false });
    const some = await p.diff(
      created.id,
      URN,
      created.properties,
      { ...checked.inputs, name: "b.txt" },
      checked.inputs,
    );
    expect(some.changes).to.equal("some");
    expect(some.replaces).to.deep.equal(["name"]);
    expect(some.stables).to.deep.equal([]);
    expect(some.diffs).to.deep.equal([]);

    const read = await p.read(created.id, URN, created.properties, checked.inputs);
    expect(read.id).to.equal(created.id);
    expect(read.inputs!.content).to.equal("hi");
    expect(read.inputs!.__provider).to.equal(fileProvider);

    const updated = await p.update(
      created.id,
      URN,
      created.properties,
      { ...checked.inputs, content: "there" },
      checked.inputs,
    );
    expect(updated.properties.content).to.equal("there");
    expect(fs.readFileSync(created.id, "utf8")).to.equal("there");

    await p.delete(created.id, URN, updated.properties, checked.inputs);
    expect(fs.existsSync(created.id)).to.equal(false);
    const gone = await p.read(created.id, URN, updated.properties);
    expect(gone.id).to.equal("");

    expect(readJournal(work).map((e) => e.method)).to.deep.equal([
      "check",
      "create",
      "diff",
      "diff",
      "read",
      "update",
      "delete",
      "read",
    ]);
    expect(p.calls.map((c) => c.method)).to.deep.equal([
      "configure",
      "check",
      "create",
      "diff",
      "diff",
      "read",
      "update",
      "delete",
      "read",
    ]);
  });

  it("check tolerates the unknown sentinel (preview)", async () => {
    const p = await start({ launcher: "node" });
    await p.configure({}, {});
    const r = await p.check(
      URN,
      {},
      { __provider: fileProvider, dir: work, name: UNKNOWN, content: UNKNOWN },
    );
    expect(r.failures).to.deep.equal([]);
    expect(r.inputs.name).to.equal(UNKNOWN);
    expect(readJournal(work)[0].unknownKeys).to.deep.equal(["content", "name"]);
  });

  it("failed calls carry the gRPC code and the provider's message; partial creates carry id and properties", async () => {
    const p = await start({ launcher: "node" });
    await p.configure({}, {});
    const base = { __provider: fileProvider, dir: work, name: "a.txt", content: "x" };

    let err: PluginError | undefined;
    try {
      await p.create(URN, { ...base, failOn: "create" });
    } catch (e) {
      err = e as PluginError;
    }
    expect(err).to.be.instanceOf(PluginError);
    expect(err!.method).to.equal("create");
    expect(err!.code).to.equal(2); // grpc UNKNOWN
    expect(err!.details).to.equal("fixture: create failed on purpose");
    expect(err!.initFailed).to.equal(undefined);

    try {
      await p.create(URN, { ...base, failOn: "create-partial" });
    } catch (e) {
      err = e as PluginError;
    }
    expect(err!.message).to.include("resource created but failed to initialize");
    expect(err!.initFailed!.id).to.equal(path.join(work, "a.txt"));
    expect(err!.initFailed!.properties.content).to.equal("x");
    expect(err!.initFailed!.reasons).to.deep.equal(["fixture: post-create step failed"]);

    try {
      await p.check(URN, {}, { ...base, failOn: "check" });
    } catch (e) {
      err = e as PluginError;
    }
    expect(err!.method).to.equal("check");
    expect(err!.details).to.include("fixture: check failed on purpose");
    expect(err!.stderr).to.include("fixture: check failed on purpose");
  });

  it("configure: args reach the provider's configure() (secret unwrapped by the plugin); namespace from PULUMI_NODEJS_PROJECT", async () => {
    const config = { "myproj:greeting": "hey", "virtnet:host": "h", "virtnet:password": "pw" };
    const p = await start({ launcher: "node", project: "myproj", config });
    await p.configure(config, { ...config, "virtnet:password": secret("pw") });
    const r = await p.create("urn:pulumi:stack::myproj::pulumi-nodejs:dynamic/fixture:Configured::c", {
      __provider: configuredProvider,
      dir: work,
      name: "c",
    });
    expect(r.properties.seen).to.include({ greeting: "hey", host: "h", passwordLength: 2 });
  });

  it("Check before Configure breaks a provider with configure() (refused unless allowUnconfigured)", async () => {
    const p = await start({ launcher: "node", allowUnconfigured: true });
    const news = { __provider: configuredProvider, dir: work, name: "c" };
    let err: PluginError | undefined;
    try {
      await p.check("urn:pulumi:stack::project::pulumi-nodejs:dynamic/fixture:Configured::c", {}, news);
    } catch (e) {
      err = e as PluginError;
    }
    expect(err, "check before configure should fail").to.be.instanceOf(PluginError);
    expect(err!.details).to.match(/undefined/);

    const strict = await start({ launcher: "node" });
    let refused: Error | undefined;
    try {
      await strict.check(URN, {}, news);
    } catch (e) {
      refused = e as Error;
    }
    expect(refused!.message).to.include("before configure()");
  });

  it("an `undefined` in a provider's outputs fails the call; the harness itself never sends undefined", async () => {
    const p = await start({ launcher: "node" });
    await p.configure({}, {});
    const base = { __provider: fileProvider, dir: work, name: "a.txt", content: "x" };
    // Our side omits undefined keys (a Struct cannot carry them).
    const r = await p.check(URN, {}, { ...base, mode: undefined });
    expect(r.inputs.mode).to.equal("0644");
    let err: PluginError | undefined;
    try {
      await p.create(URN, { ...base, failOn: "undefined-output" });
    } catch (e) {
      err = e as PluginError;
    }
    expect(err, "create returning undefined should fail").to.be.instanceOf(PluginError);
    expect(err!.details).to.match(/Unexpected struct type/);
  });

  it("package self-reference does not work inside the plugin: require() resolves only via <cwd>/node_modules", async () => {
    // In this process (a file inside the package) the self-reference resolves...
    expect(require.resolve("pulumi-virtnet/dist/tests/engine/fixtures/impl.js")).to.equal(
      path.join(repoRoot(), "dist", "tests", "engine", "fixtures", "impl.js"),
    );
    // ...but the plugin loads the serialized provider with an empty filename, so from a program directory
    // without node_modules/pulumi-virtnet the same require fails. makeProjectDir() provides that link (and
    // scripts/ensure-deps.sh gives the repo root one, for its own Pulumi.yaml).
    const bare = fs.mkdtempSync(path.join(os.tmpdir(), "virtnet-bare-"));
    let err: PluginError | undefined;
    try {
      const p = await start({ launcher: "node", cwd: bare });
      await p.configure({}, {});
      await p.check(URN, {}, { __provider: fileProvider, dir: work, name: "a.txt", content: "x" });
    } catch (e) {
      err = e as PluginError;
    } finally {
      fs.rmSync(bare, { recursive: true, force: true });
    }
    expect(err, "check from a directory without node_modules/pulumi-virtnet should fail").to.be.instanceOf(
      PluginError,
    );
    expect(err!.details).to.include("Cannot find module 'pulumi-virtnet/dist/tests/engine/fixtures/impl.js'");
  });

  it("is isolated from the secret-wrapper shape the SDK uses (pulumi.secret serializes to the same wrapper)", async () => {
    const { registrations } = await captureRegistrations(async () => {
      new FileResource("f", { dir: work, name: "a", content: "c", secretToken: pulumi.secret("v") });
      return {};
    });
    const wire = registrations.find((r) => r.name === "f")!.inputs.secretToken;
    expect(isSecret(wire)).to.equal(true);
    expect(wire).to.deep.equal(secret("v"));
  });
});
