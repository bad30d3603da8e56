// ProviderPlugin: starts the REAL dynamic-provider plugin that ships inside @pulumi/pulumi
// (`pulumi-resource-pulumi-nodejs`) and talks to it over gRPC the way the Pulumi engine does
// (see tests/engine/README.md and the engine's plugin client, provider_plugin.go).
//
// Wire conventions reproduced here:
//   - values travel as google.protobuf.Struct;
//   - the unknown (preview) value is the string UNKNOWN;
//   - a secret travels as {SIG_KEY: SECRET_SIG, value};
//   - the dynamic plugin answers Configure with acceptSecrets=false, so every call after Configure
//     carries values with the secret wrappers removed (Configure itself keeps them, as the engine does);
//   - the plugin does not accept resource references: a reference is sent as its id (or its URN).
import * as child_process from "child_process";
import * as fs from "fs";
import { createRequire } from "module";
import * as path from "path";

/** The unknown-value sentinel of the Pulumi wire format (an output not known during preview). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
/** The key that marks special values (secrets, assets, resource references) on the wire. */
export const SIG_KEY = "4dabf18193072939515e22adb298388d";
/** The signature of a secret: {[SIG_KEY]: SECRET_SIG, value}. */
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
/** The signature of a resource reference: {[SIG_KEY]: RESOURCE_SIG, urn, id?, packageVersion?}. */
export const RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e";

export type PropertyMap = Record<string, any>;

/** Wraps a value the way the wire marks a secret. */
export function secret<T>(value: T): { [SIG_KEY]: string; value: T } {
  return { [SIG_KEY]: SECRET_SIG, value };
}

/** True when v is a wire secret wrapper. */
export function isSecret(v: unknown): v is { value: any } {
  return typeof v === "object" && v !== null && !Array.isArray(v) && (v as any)[SIG_KEY] === SECRET_SIG;
}

/** True when v, or anything inside it, is a wire secret wrapper. */
export function containsSecrets(v: unknown): boolean {
  if (isSecret(v)) return true;
  if (Array.isArray(v)) return v.some(containsSecrets);
  if (typeof v === "object" && v !== null) return Object.values(v).some(containsSecrets);
  return false;
}

/** True when v, or anything inside it, is the unknown sentinel. */
export function containsUnknowns(v: unknown): boolean {
  if (v === UNKNOWN) return true;
  if (Array.isArray(v)) return v.some(containsUnknowns);
  if (typeof v === "object" && v !== null) return Object.values(v).some(containsUnknowns);
  return false;
}

/**
 * The engine's MarshalProperties with KeepSecrets=false, KeepResources=false: removes every secret wrapper
 * (keeping the value), turns resource references into their id (or URN when there is no id), drops keys whose
 * value is `undefined` (a Struct cannot carry it).
 */
export function stripSecrets(v: any): any {
  if (v === undefined || v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map((e) => (e === undefined ? null : stripSecrets(e)));
  if (v[SIG_KEY] === SECRET_SIG) return stripSecrets(v.value);
  if (v[SIG_KEY] === RESOURCE_SIG) return typeof v.id === "string" && v.id !== "" ? v.id : v.urn;
  const out: Record<string, any> = {};
  for (const [k, e] of Object.entries(v)) {
    if (e !== undefined) out[k] = stripSecrets(e);
  }
  return out;
}

/** Drops `undefined` keys (and turns `undefined` array items into null) without touching secrets. */
export function dropUndefined(v: any): any {
  if (v === undefined || v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map((e) => (e === undefined ? null : dropUndefined(e)));
  const out: Record<string, any> = {};
  for (const [k, e] of Object.entries(v)) {
    if (e !== undefined) out[k] = dropUndefined(e);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// The SDK's own gRPC stubs and protobuf runtime, loaded from @pulumi/pulumi's resolution so that the client
// uses the same @grpc/grpc-js and google-protobuf copies as the generated stubs.

/** Directory of the installed @pulumi/pulumi package. */
export const PULUMI_DIR = path.dirname(require.resolve("@pulumi/pulumi/package.json"));
const pulumiRequire = createRequire(path.join(PULUMI_DIR, "package.json"));
const grpc: any = pulumiRequire("@grpc/grpc-js");
const provrpc: any = pulumiRequire("./proto/provider_grpc_pb");
const provproto: any = pulumiRequire("./proto/provider_pb");
const statusproto: any = pulumiRequire("./proto/status_pb");
const structproto: any = pulumiRequire("google-protobuf/google/protobuf/struct_pb");
const emptyproto: any = pulumiRequire("google-protobuf/google/protobuf/empty_pb");

/** JS object -> google.protobuf.Struct. Throws (like the plugin does) on values a Struct cannot hold. */
export function toStruct(obj: PropertyMap): any {
  return structproto.Struct.fromJavaScript(obj);
}

/** google.protobuf.Struct (or undefined) -> JS object. */
export function fromStruct(s: any): PropertyMap | undefined {
  return s ? s.toJavaScript() : undefined;
}

// ---------------------------------------------------------------------------------------------------------

export type DiffChanges = "unknown" | "none" | "some";

export interface ConfigureResult {
  acceptSecrets: boolean;
  supportsPreview: boolean;
  acceptResources: boolean;
  acceptOutputs: boolean;
}

export interface CheckFailure {
  property: string;
  reason: string;
}

export interface CheckResult {
  /** The checked inputs, as the plugin returned them (`__provider` included). */
  inputs: PropertyMap;
  failures: CheckFailure[];
}

export interface DiffResult {
  changes: DiffChanges;
  replaces: string[];
  /** Sent by the plugin protocol but never set by the Node dynamic plugin. */
  stables: string[];
  deleteBeforeReplace: boolean;
  /** `diffs` of DiffResponse: never set by the Node dynamic plugin. */
  diffs: string[];
  hasDetailedDiff: boolean;
}

export interface CreateResult {
  id: string;
  properties: PropertyMap;
}

export interface ReadResult {
  /** Empty when the provider reports the resource gone. */
  id: string;
  properties: PropertyMap;
  /** Present only when the provider's read() returned `inputs`. */
  inputs?: PropertyMap;
}

export interface UpdateResult {
  properties: PropertyMap;
}

/** What ErrorResourceInitFailed carries: the resource exists but did not finish initializing. */
export interface InitFailure {
  id: string;
  properties: PropertyMap;
  reasons: string[];
  inputs?: PropertyMap;
}

/** A failed plugin call: the gRPC status, message and details, plus the plugin's stderr so far. */
export class PluginError extends Error {
  constructor(
    readonly method: string,
    readonly code: number,
    /** The gRPC status details text (the provider's error message). */
    readonly details: string,
    /** Set for "resource created but failed to initialize" (partial state). */
    readonly initFailed: InitFailure | undefined,
    readonly stderr: string,
  ) {
    super(
      `${method} failed: ${initFailed ? "resource created but failed to initialize: " : ""}${details}` +
        ` (grpc code ${code})`,
    );
    this.name = "PluginError";
  }
}

export interface PluginOptions {
  /** Working directory of the plugin: the program's directory. The plugin require()s from here. */
  cwd: string;
  /** Sets PULUMI_NODEJS_PROJECT and PULUMI_PROJECT. Default "project". */
  project?: string;
  /** Sets PULUMI_NODEJS_STACK and PULUMI_STACK. Default "stack". */
  stack?: string;
  /** The stack config as plain strings, keys like "virtnet:host"; becomes PULUMI_CONFIG. */
  config?: Record<string, string>;
  /** Extra environment for the plugin process. */
  env?: Record<string, string>;
  /**
   * "wrapper" (default) runs node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs, the sh script the
   * engine runs (it resolves @pulumi/pulumi from cwd); "node" runs the node script it wraps directly
   * (about 0.3 s faster to start).
   */
  launcher?: "wrapper" | "node";
  /**
   * Let check/diff/create/... go out before configure(). The engine never does that; only for showing what
   * happens (a provider with configure() then fails). Default false: such a call throws.
   */
  allowUnconfigured?: boolean;
  /** Milliseconds to wait for the port line. Default 30000. */
  startTimeoutMs?: number;
}

export interface CallStat {
  method: string;
  ms: number;
  /** When the request went out and its response came back, on performance.now()'s clock (ms). */
  start: number;
  end: number;
}

const livePlugins = new Set<ProviderPlugin>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const p of livePlugins) p.killNow();
  });
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Direct children of a process (Linux /proc). */
function childPids(pid: number): number[] {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter((x) => x)
      .map(Number);
  } catch {
    // No children file: scan /proc for processes whose parent is pid.
    const out: number[] = [];
    let entries: string[] = [];
    try {
      entries = fs.readdirSync("/proc").filter((e) => /^\d+$/.test(e));
    } catch {
      return out;
    }
    for (const e of entries) {
      try {
        const stat = fs.readFileSync(`/proc/${e}/stat`, "utf8");
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        if (ppid === pid) out.push(Number(e));
      } catch {
        // gone
      }
    }
    return out;
  }
}

function urnName(urn: string): string {
  const parts = urn.split("::");
  return parts[parts.length - 1] ?? "";
}

function urnType(urn: string): string {
  const parts = urn.split("::");
  const qualified = parts.length >= 4 ? parts[2] : "";
  return qualified.split("$").pop() ?? "";
}

/** The real Node.js dynamic-provider plugin process and a gRPC client to it. */
export class ProviderPlugin {
  /** Everything the plugin printed on stdout after the port line (pulumi.log goes here without an engine). */
  stdout = "";
  stderr = "";
  /** Wall time from spawn to the port line, ms. */
  startMs = 0;
  /** Duration of every gRPC call made, in order. */
  readonly calls: CallStat[] = [];
  /** Set by configure(): what the plugin said it accepts. */
  protocol: ConfigureResult | undefined;
  private exited = false;
  private exitPromise: Promise<void>;

  private constructor(
    private readonly proc: child_process.ChildProcess,
    private readonly client: any,
    readonly port: number,
    private readonly allowUnconfigured: boolean,
  ) {
    this.exitPromise = new Promise((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        this.exited = true;
        resolve();
        return;
      }
      proc.once("exit", () => {
        this.exited = true;
        resolve();
      });
    });
  }

  /** Number of plugin processes started by this module and not yet closed. */
  static liveCount(): number {
    return livePlugins.size;
  }

  /** True while any process of the plugin's process group (launcher and node child) is still alive. */
  static groupAlive(pid: number): boolean {
    try {
      process.kill(-pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  /** Process id of the spawned launcher (the process group leader). */
  get pid(): number {
    return this.proc.pid ?? -1;
  }

  /** Spawns the plugin, waits for its port line and connects. */
  static async start(opts: PluginOptions): Promise<ProviderPlugin> {
    installExitHook();
    const project = opts.project ?? "project";
    const stack = opts.stack ?? "stack";
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      PULUMI_NODEJS_PROJECT: project,
      PULUMI_PROJECT: project,
      PULUMI_NODEJS_STACK: stack,
      PULUMI_STACK: stack,
      PULUMI_CONFIG: JSON.stringify(opts.config ?? {}),
      ...(opts.env ?? {}),
    };
    // pulumi.log.* inside the plugin reaches the engine only when PULUMI_NODEJS_ENGINE is set; no engine here.
    delete env.PULUMI_NODEJS_ENGINE;
    const launcher = opts.launcher ?? "wrapper";
    const t0 = process.hrtime.bigint();
    const [cmd, args] =
      launcher === "wrapper"
        ? [path.join(PULUMI_DIR, "pulumi-resource-pulumi-nodejs"), ["127.0.0.1:1"]]
        : [process.execPath, [path.join(PULUMI_DIR, "cmd", "dynamic-provider", "index.js"), "127.0.0.1:1"]];
    // detached: the plugin gets its own process group, so close() can end the sh wrapper and its node child.
    const proc = child_process.spawn(cmd, args, {
      cwd: opts.cwd,
      env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    let stdoutBuf = "";
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        fail(new Error(`plugin did not print its port within ${opts.startTimeoutMs ?? 30000} ms`));
      }, opts.startTimeoutMs ?? 30000);
      const fail = (e: Error) => {
        clearTimeout(timer);
        if (proc.pid) {
          for (const child of childPids(proc.pid)) signal(child, "SIGKILL");
          signal(-proc.pid, "SIGKILL");
        }
        reject(new Error(`${e.message}\nplugin stderr:\n${stderr}`));
      };
      proc.once("error", fail);
      proc.once("exit", (code, sig) =>
        fail(new Error(`plugin exited before printing its port (${code ?? sig})`)),
      );
      proc.stderr!.on("data", (d) => (stderr += String(d)));
      const onData = (d: Buffer) => {
        stdoutBuf += String(d);
        const nl = stdoutBuf.indexOf("\n");
        if (nl < 0) return;
        const line = stdoutBuf.slice(0, nl).trim();
        stdoutBuf = stdoutBuf.slice(nl + 1);
        proc.stdout!.off("data", onData);
        clearTimeout(timer);
        proc.removeAllListeners("exit");
        proc.removeAllListeners("error");
        const n = Number(line);
        if (!Number.isInteger(n) || n <= 0) reject(new Error(`plugin printed "${line}" instead of a port`));
        else resolve(n);
      };
      proc.stdout!.on("data", onData);
    });
    const client = new provrpc.ResourceProviderClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const plugin = new ProviderPlugin(proc, client, port, !!opts.allowUnconfigured);
    plugin.startMs = Number(process.hrtime.bigint() - t0) / 1e6;
    plugin.stderr = stderr;
    plugin.stdout = stdoutBuf;
    proc.stdout!.on("data", (d) => (plugin.stdout += String(d)));
    proc.stderr!.removeAllListeners("data");
    proc.stderr!.on("data", (d) => (plugin.stderr += String(d)));
    proc.on("error", () => undefined);
    livePlugins.add(plugin);
    return plugin;
  }

  private rpc<T>(method: string, req: any): Promise<T> {
    const t0 = process.hrtime.bigint();
    const start = performance.now();
    return new Promise<T>((resolve, reject) => {
      if (this.exited) {
        reject(new Error(`${method}: plugin process has exited\nplugin stderr:\n${this.stderr}`));
        return;
      }
      this.client[method](req, (err: any, resp: T) => {
        const end = performance.now();
        this.calls.push({ method, ms: Number(process.hrtime.bigint() - t0) / 1e6, start, end });
        if (err) reject(this.toPluginError(method, err));
        else resolve(resp);
      });
    });
  }

  private toPluginError(method: string, err: any): PluginError {
    let initFailed: InitFailure | undefined;
    const bins = err?.metadata?.get?.("grpc-status-details-bin") ?? [];
    for (const bin of bins) {
      try {
        const status = statusproto.Status.deserializeBinary(new Uint8Array(bin as Buffer));
        for (const any of status.getDetailsList()) {
          if (any.getTypeName() !== "pulumirpc.ErrorResourceInitFailed") continue;
          const d = provproto.ErrorResourceInitFailed.deserializeBinary(any.getValue_asU8());
          initFailed = {
            id: d.getId(),
            properties: fromStruct(d.getProperties()) ?? {},
            reasons: d.getReasonsList(),
            inputs: fromStruct(d.getInputs()),
          };
        }
      } catch {
        // not a Status: leave initFailed unset
      }
    }
    return new PluginError(method, err?.code ?? -1, err?.details ?? String(err), initFailed, this.stderr);
  }

  /** Marshals a property map for a call after Configure: secrets stripped unless the plugin accepts them. */
  private marshal(props: PropertyMap): any {
    return toStruct(this.protocol?.acceptSecrets ? dropUndefined(props) : stripSecrets(props));
  }

  private requireConfigured(method: string): void {
    if (!this.protocol && !this.allowUnconfigured) {
      // The engine never calls a resource method before Configure; a provider with configure() breaks if it does.
      throw new Error(`${method} before configure(): the engine always calls Configure first`);
    }
  }

  /**
   * Configure, as the engine sends it for the dynamic provider: `variables` are plain strings, `args` are the
   * config values with secrets kept as wrappers (the plugin unwraps them).
   */
  async configure(variables: Record<string, string>, args: PropertyMap): Promise<ConfigureResult> {
    const req = new provproto.ConfigureRequest();
    const vars = req.getVariablesMap();
    for (const [k, v] of Object.entries(variables)) vars.set(k, v);
    req.setArgs(toStruct(dropUndefined(args)));
    req.setAcceptsecrets(true);
    req.setAcceptresources(true);
    req.setSendsOldInputs(true);
    req.setSendsOldInputsToDelete(true);
    const resp: any = await this.rpc("configure", req);
    this.protocol = {
      acceptSecrets: resp.getAcceptsecrets(),
      supportsPreview: resp.getSupportspreview(),
      acceptResources: resp.getAcceptresources(),
      acceptOutputs: resp.getAcceptoutputs(),
    };
    return this.protocol;
  }

  async check(urn: string, olds: PropertyMap, news: PropertyMap): Promise<CheckResult> {
    this.requireConfigured("check");
    const req = new provproto.CheckRequest();
    req.setUrn(urn);
    req.setName(urnName(urn));
    req.setType(urnType(urn));
    req.setOlds(this.marshal(olds));
    req.setNews(this.marshal(news));
    const resp: any = await this.rpc("check", req);
    return {
      inputs: fromStruct(resp.getInputs()) ?? {},
      failures: resp
        .getFailuresList()
        .map((f: any) => ({ property: f.getProperty(), reason: f.getReason() })),
    };
  }

  async diff(
    id: string,
    urn: string,
    olds: PropertyMap,
    news: PropertyMap,
    oldInputs: PropertyMap,
  ): Promise<DiffResult> {
    this.requireConfigured("diff");
    const req = new provproto.DiffRequest();
    req.setId(id);
    req.setUrn(urn);
    req.setName(urnName(urn));
    req.setType(urnType(urn));
    req.setOlds(this.marshal(olds));
    req.setNews(this.marshal(news));
    req.setOldInputs(this.marshal(oldInputs));
    const resp: any = await this.rpc("diff", req);
    const C = provproto.DiffResponse.DiffChanges;
    const ch = resp.getChanges();
    return {
      changes: ch === C.DIFF_SOME ? "some" : ch === C.DIFF_NONE ? "none" : "unknown",
      replaces: resp.getReplacesList(),
      stables: resp.getStablesList(),
      deleteBeforeReplace: resp.getDeletebeforereplace(),
      diffs: resp.getDiffsList(),
      hasDetailedDiff: resp.getHasdetaileddiff(),
    };
  }

  async create(urn: string, props: PropertyMap, opts: { preview?: boolean } = {}): Promise<CreateResult> {
    this.requireConfigured("create");
    const req = new provproto.CreateRequest();
    req.setUrn(urn);
    req.setName(urnName(urn));
    req.setType(urnType(urn));
    req.setProperties(this.marshal(props));
    req.setPreview(!!opts.preview);
    const resp: any = await this.rpc("create", req);
    return { id: resp.getId(), properties: fromStruct(resp.getProperties()) ?? {} };
  }

  async read(id: string, urn: string, props: PropertyMap, inputs?: PropertyMap): Promise<ReadResult> {
    this.requireConfigured("read");
    const req = new provproto.ReadRequest();
    req.setId(id);
    req.setUrn(urn);
    req.setName(urnName(urn));
    req.setType(urnType(urn));
    req.setProperties(this.marshal(props));
    if (inputs) req.setInputs(this.marshal(inputs));
    const resp: any = await this.rpc("read", req);
    return {
      id: resp.getId(),
      properties: fromStruct(resp.getProperties()) ?? {},
      inputs: fromStruct(resp.getInputs()),
    };
  }

  async update(
    id: string,
    urn: string,
    olds: PropertyMap,
    news: PropertyMap,
    oldInputs: PropertyMap,
    opts: { preview?: boolean } = {},
  ): Promise<UpdateResult> {
    this.requireConfigured("update");
    const req = new provproto.UpdateRequest();
    req.setId(id);
    req.setUrn(urn);
    req.setName(urnName(urn));
    req.setType(urnType(urn));
    req.setOlds(this.marshal(olds));
    req.setNews(this.marshal(news));
    req.setOldInputs(this.marshal(oldInputs));
    req.setPreview(!!opts.preview);
    const resp: any = await this.rpc("update", req);
    return { properties: fromStruct(resp.getProperties()) ?? {} };
  }

  async delete(id: string, urn: string, props: PropertyMap, oldInputs?: PropertyMap): Promise<void> {
    this.requireConfigured("delete");
    const req = new provproto.DeleteRequest();
    req.setId(id);
    req.setUrn(urn);
    req.setName(urnName(urn));
    req.setType(urnType(urn));
    req.setProperties(this.marshal(props));
    if (oldInputs) req.setOldInputs(this.marshal(oldInputs));
    await this.rpc("delete", req);
  }

  /** The plugin's @pulumi/pulumi version. */
  async getPluginInfo(): Promise<{ version: string }> {
    const resp: any = await this.rpc("getPluginInfo", new emptyproto.Empty());
    return { version: resp.getVersion() };
  }

  /** Ends the plugin process group at once (used by the process exit hook). */
  killNow(): void {
    livePlugins.delete(this);
    try {
      this.client.close();
    } catch {
      // ignore
    }
    if (this.exited || !this.proc.pid) return;
    for (const child of childPids(this.proc.pid)) signal(child, "SIGKILL");
    signal(-this.proc.pid, "SIGKILL");
  }

  /**
   * Closes the client and ends the plugin; resolves when the launcher has exited. With the sh wrapper, the node
   * child is signalled first so that sh reaps it: signalling the whole group would orphan the child to PID 1,
   * which on these machines does not reap, leaving a zombie per run.
   */
  async close(): Promise<void> {
    livePlugins.delete(this);
    try {
      this.client.close();
    } catch {
      // ignore
    }
    if (this.exited || !this.proc.pid) return;
    const pid = this.proc.pid;
    const children = childPids(pid);
    for (const child of children) signal(child, "SIGTERM");
    if (children.length === 0) signal(pid, "SIGTERM");
    const timer = setTimeout(() => {
      for (const child of childPids(pid)) signal(child, "SIGKILL");
      signal(-pid, "SIGKILL");
    }, 2000);
    await this.exitPromise;
    clearTimeout(timer);
    // Anything else left in the group (there should be nothing).
    signal(-pid, "SIGKILL");
  }
}
