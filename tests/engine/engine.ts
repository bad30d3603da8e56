// A mini Pulumi engine for tests, demos and benchmarks: runs a real Pulumi program's registrations (through the
// SDK's mock monitor) and drives the SDK's REAL dynamic-provider plugin process over gRPC the way the engine
// does for `pulumi up / preview / refresh / destroy`. See tests/engine/README.md.
//
// Isolation between runs in one process: each program run gets its own SDK state store
// (runtime/state.withLocalStorage, what the Automation API's inline-program server does per run), then
// setMocks() (which resets the store's options and installs a fresh mock monitor), then setAllConfig().
// Nothing of a run's monitor, stack resource, config or feature flags leaks into the next one.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import {
  CallStat,
  CheckFailure,
  DiffChanges,
  PluginError,
  PluginOptions,
  PropertyMap,
  ProviderPlugin,
  containsSecrets,
  dropUndefined,
  isSecret,
  secret,
  stripSecrets,
} from "./plugin";

// Internal SDK modules (not part of the public API): the per-run async-local state store, and waitForRPCs.
const runtimeState: {
  withLocalStorage<T>(cb: () => Promise<T>): Promise<T>;
} = require("@pulumi/pulumi/runtime/state");
const runtimeSettings: { waitForRPCs(): Promise<void> } = require("@pulumi/pulumi/runtime/settings");

export const STACK_TYPE = "pulumi:pulumi:Stack";
/** Type tokens of dynamic resources: `pulumi-nodejs:dynamic[/module]:Type`. */
export const DYNAMIC_TYPE_PREFIX = "pulumi-nodejs:dynamic";

/** A stack config value: a plain string, or a secret (like `pulumi config set --secret`). */
export type ConfigValue = string | { secret: string };
/** A program: a function (returns the stack outputs), or a module path (required afresh each run). */
export type ProgramFn = () => unknown;
export type Program = ProgramFn | string;

/** One resource in the state, as the engine keeps it (values in wire form: secrets are wrappers). */
export interface ResourceState {
  urn: string;
  type: string;
  custom: boolean;
  id?: string;
  /** Checked inputs (what Check returned, secrets re-marked). */
  inputs: PropertyMap;
  outputs: PropertyMap;
  parent?: string;
  dependencies?: string[];
  provider?: string;
  deleteBeforeReplace?: boolean;
  retainOnDelete?: boolean;
  additionalSecretOutputs?: string[];
  /** Read with `get`/import: never deleted by the engine. */
  external?: boolean;
  /** Set when a create/update failed after the resource existed ("resource created but failed to initialize"). */
  initErrors?: string[];
}

export interface StackState {
  version: 1;
  resources: ResourceState[];
}

export function emptyState(): StackState {
  return { version: 1, resources: [] };
}

export interface EngineOptions {
  /** The program's directory: the plugin's cwd (it require()s provider modules from here). Default cwd. */
  cwd?: string;
  /** Default "project". */
  project?: string;
  /** Default "stack". */
  stack?: string;
  /** Stack config, keys like "virtnet:host". */
  config?: Record<string, ConfigValue>;
  /** In-memory state, updated in place (not in preview). */
  state?: StackState;
  /** JSON state file, read if present and written after the run (not in preview). */
  stateFile?: string;
  /** How to start the plugin (see PluginOptions.launcher). Default "wrapper", as the engine does. */
  launcher?: PluginOptions["launcher"];
  /** Extra environment for the plugin process. */
  pluginEnv?: Record<string, string>;
  /** Answers invokes made by the program (`pulumi.runtime.invoke`); default: an error. */
  call?: (args: pulumi.runtime.MockCallArgs) => Record<string, any>;
}

export interface UpOptions extends EngineOptions {
  program: Program;
  /** Preview: Check and Diff only; no Create/Update/Delete (the dynamic plugin has supportsPreview=false). */
  preview?: boolean;
}

export type OpKind = "create" | "update" | "replace" | "delete" | "same" | "read";

export interface DiffSummary {
  /** The provider's answer; "unknown" when it has no diff() (the engine then compares inputs itself). */
  changes: DiffChanges;
  replaces: string[];
  deleteBeforeReplace: boolean;
  /** Top-level input keys whose value differs between the old inputs and the new checked inputs. */
  changedKeys: string[];
}

export interface Operation {
  op: OpKind;
  urn: string;
  type: string;
  name: string;
  custom: boolean;
  /** True for dynamic resources (the plugin was involved). */
  dynamic: boolean;
  id?: string;
  /** The RPCs made for this resource, in order, e.g. ["check", "diff", "update"]. */
  calls: string[];
  diff?: DiffSummary;
  /** Check's result with secrets re-marked: what `pulumi preview --diff` shows as the new inputs. */
  checkedInputs?: PropertyMap;
  oldInputs?: PropertyMap;
  oldOutputs?: PropertyMap;
  outputs?: PropertyMap;
  /** Replacement done delete-before-replace. */
  deleteBeforeReplace?: boolean;
  /** Delete skipped because of retainOnDelete. */
  retained?: boolean;
  failures?: CheckFailure[];
  error?: string;
}

/** A registration as the engine receives it: raw wire inputs (secret wrappers, unknowns, `__provider`). */
export interface Registration {
  kind: "register" | "read";
  urn: string;
  type: string;
  name: string;
  custom: boolean;
  parent?: string;
  inputs: PropertyMap;
  dependencies: string[];
  provider?: string;
  importId?: string;
  options: {
    deleteBeforeReplace: boolean;
    ignoreChanges: string[];
    replaceOnChanges: string[];
    additionalSecretOutputs: string[];
    retainOnDelete: boolean;
    protect: boolean;
  };
}

export interface Timing {
  totalMs: number;
  programMs?: number;
  /** From the run's start to the first call that needs the plugin (the program until its first dynamic resource). */
  beforePluginMs?: number;
  pluginStartMs?: number;
  /** Every gRPC call to the plugin with its duration. */
  rpc: CallStat[];
}

export interface RunResult {
  kind: "up" | "preview" | "refresh" | "destroy" | "capture";
  operations: Operation[];
  /** Count per operation kind, dynamic resources only. */
  summary: Partial<Record<OpKind, number>>;
  /** The state after the run (in preview: the state before, unchanged). */
  state: StackState;
  errors: string[];
  timing: Timing;
  /** Process id (and process group id) of the plugin this run started, if it started one. */
  pluginPid?: number;
  pluginStdout: string;
  pluginStderr: string;
}

export interface UpResult extends RunResult {
  /** Stack outputs in wire form (secret wrappers kept). */
  outputs: PropertyMap;
  registrations: Registration[];
}

export interface RefreshChange {
  urn: string;
  id?: string;
  /** "same": no drift; "update": outputs or inputs changed; "delete": the provider reports it gone. */
  op: "same" | "update" | "delete";
  changedKeys: string[];
  outputsBefore: PropertyMap;
  outputsAfter?: PropertyMap;
  inputsBefore: PropertyMap;
  inputsAfter?: PropertyMap;
}

export interface RefreshResult extends RunResult {
  changes: RefreshChange[];
}

/** A run that failed: `result` holds what happened up to the failure (the state was still saved). */
export class DeploymentError extends Error {
  constructor(
    message: string,
    readonly result: RunResult,
  ) {
    super(message);
    this.name = "DeploymentError";
  }
}

// ---------------------------------------------------------------------------------------------------------
// helpers

/** Finds the repository root (the directory of package.json named pulumi-virtnet). */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pj = path.join(dir, "package.json");
    if (fs.existsSync(pj) && JSON.parse(fs.readFileSync(pj, "utf8")).name === "pulumi-virtnet") return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error("repoRoot: no package.json named pulumi-virtnet above " + __dirname);
    dir = up;
  }
}

/**
 * Makes a Pulumi project directory like a user's: Pulumi.yaml and node_modules holding `pulumi-virtnet` (a
 * symlink to this repo, so `require("pulumi-virtnet/dist/...")` resolves as for an installed package) and
 * `@pulumi` (so the plugin's sh wrapper finds the SDK). Use it as `cwd`: inside the plugin, serialized
 * providers are loaded with an empty filename, so Node's package self-reference does not apply and a
 * `require("pulumi-virtnet/...")` only resolves through <cwd>/node_modules.
 */
export function makeProjectDir(opts: { project?: string; parent?: string } = {}): string {
  const root = repoRoot();
  const dir = fs.mkdtempSync(path.join(opts.parent ?? os.tmpdir(), "virtnet-engine-"));
  fs.writeFileSync(path.join(dir, "Pulumi.yaml"), `name: ${opts.project ?? "project"}\nruntime: nodejs\n`);
  fs.mkdirSync(path.join(dir, "node_modules"));
  fs.symlinkSync(root, path.join(dir, "node_modules", "pulumi-virtnet"), "dir");
  fs.symlinkSync(
    path.join(root, "node_modules", "@pulumi"),
    path.join(dir, "node_modules", "@pulumi"),
    "dir",
  );
  return dir;
}

function clone<T>(v: T): T {
  return v === undefined ? v : JSON.parse(JSON.stringify(v));
}

function isObject(v: unknown): v is Record<string, any> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !isSecret(v);
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(v: any): any {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === "object") {
    const out: Record<string, any> = {};
    for (const k of Object.keys(v).sort()) out[k] = canonical(v[k]);
    return out;
  }
  return v;
}

/**
 * The engine's annotateSecrets (provider_plugin.go): for every key present in both, objects recurse; otherwise
 * when the input holds a secret the whole output value is marked secret. Returns a new map.
 */
export function annotateSecrets(outs: PropertyMap, ins: PropertyMap | undefined): PropertyMap {
  if (!ins) return outs;
  const result: PropertyMap = { ...outs };
  for (const [k, inValue] of Object.entries(ins)) {
    if (!(k in result)) continue;
    const outValue = result[k];
    if (isObject(outValue) && isObject(inValue)) result[k] = annotateSecrets(outValue, inValue);
    else if (!isSecret(outValue) && containsSecrets(inValue)) result[k] = secret(outValue);
  }
  return result;
}

function markAdditionalSecrets(outs: PropertyMap, keys: string[] | undefined): PropertyMap {
  if (!keys || keys.length === 0) return outs;
  const result = { ...outs };
  for (const k of keys) if (k in result && !isSecret(result[k])) result[k] = secret(result[k]);
  return result;
}

/** Top-level keys whose (secret-stripped) values differ. */
export function changedKeys(a: PropertyMap, b: PropertyMap): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => !deepEqual(stripSecrets(a[k]), stripSecrets(b[k]))).sort();
}

function isDynamic(type: string, inputs: PropertyMap): boolean {
  return (
    (type === DYNAMIC_TYPE_PREFIX ||
      type.startsWith(DYNAMIC_TYPE_PREFIX + ":") ||
      type.startsWith(DYNAMIC_TYPE_PREFIX + "/")) &&
    "__provider" in inputs
  );
}

/** The mock monitor's URN scheme (runtime/mocks.js newUrn). */
function makeUrn(
  project: string,
  stack: string,
  parent: string | undefined,
  type: string,
  name: string,
): string {
  if (parent) {
    const qualified = parent.split("::")[2];
    type = qualified.split("$").pop() + "$" + type;
  }
  return "urn:pulumi:" + [stack, project, type, name].join("::");
}

function errorText(e: unknown): string {
  if (e instanceof PluginError) return e.message;
  return e instanceof Error ? e.message : String(e);
}

function summarize(ops: Operation[]): Partial<Record<OpKind, number>> {
  const s: Partial<Record<OpKind, number>> = {};
  for (const o of ops) if (o.dynamic && !o.error) s[o.op] = (s[o.op] ?? 0) + 1;
  return s;
}

function loadState(opts: EngineOptions): StackState {
  if (opts.state) return clone(opts.state);
  if (opts.stateFile && fs.existsSync(opts.stateFile))
    return JSON.parse(fs.readFileSync(opts.stateFile, "utf8"));
  return emptyState();
}

function saveState(opts: EngineOptions, state: StackState): void {
  if (opts.state) {
    opts.state.version = state.version;
    opts.state.resources = clone(state.resources);
  }
  if (opts.stateFile) {
    fs.mkdirSync(path.dirname(opts.stateFile), { recursive: true });
    const tmp = opts.stateFile + ".tmp";
    fs.writeFileSync(tmp, JSON.stringify(state, null, 2) + "\n");
    fs.renameSync(tmp, opts.stateFile);
  }
}

function splitConfig(config: Record<string, ConfigValue> | undefined): {
  plain: Record<string, string>;
  args: PropertyMap;
  secretKeys: string[];
} {
  const plain: Record<string, string> = {};
  const args: PropertyMap = {};
  const secretKeys: string[] = [];
  for (const [k, v] of Object.entries(config ?? {})) {
    if (typeof v === "object" && v !== null && "secret" in v) {
      plain[k] = v.secret;
      args[k] = secret(v.secret);
      secretKeys.push(k);
    } else {
      plain[k] = v as string;
      args[k] = v;
    }
  }
  return { plain, args, secretKeys };
}

// ---------------------------------------------------------------------------------------------------------

/** One engine run: at most one plugin process, configured once, closed at the end. */
class Run {
  readonly ops: Operation[] = [];
  readonly errors: string[] = [];
  readonly registrations: Registration[] = [];
  readonly project: string;
  readonly stack: string;
  private pluginPromise: Promise<ProviderPlugin> | undefined;
  plugin: ProviderPlugin | undefined;
  pluginRequestedAt: number | undefined;
  failed = false;
  readonly t0 = Date.now();

  constructor(readonly opts: EngineOptions) {
    this.project = opts.project ?? "project";
    this.stack = opts.stack ?? "stack";
  }

  /** Starts the plugin and calls Configure before anything else (Check before Configure breaks configure()). */
  getPlugin(): Promise<ProviderPlugin> {
    if (!this.pluginPromise) {
      this.pluginRequestedAt = Date.now();
      this.pluginPromise = (async () => {
        const { plain, args } = splitConfig(this.opts.config);
        const plugin = await ProviderPlugin.start({
          cwd: this.opts.cwd ?? process.cwd(),
          project: this.project,
          stack: this.stack,
          config: plain,
          env: this.opts.pluginEnv,
          launcher: this.opts.launcher,
        });
        this.plugin = plugin;
        await plugin.configure(plain, args);
        return plugin;
      })();
    }
    return this.pluginPromise;
  }

  fail(op: Operation | undefined, e: unknown): string {
    const msg = `${op ? op.urn + ": " : ""}${errorText(e)}`;
    this.failed = true;
    this.errors.push(msg);
    if (op) op.error = errorText(e);
    return msg;
  }

  async close(): Promise<void> {
    if (this.pluginPromise) {
      try {
        await this.pluginPromise;
      } catch {
        // start failed: nothing to close
      }
    }
    if (this.plugin) await this.plugin.close();
  }

  result(kind: RunResult["kind"], state: StackState): RunResult {
    return {
      kind,
      operations: this.ops,
      summary: summarize(this.ops),
      state,
      errors: this.errors,
      timing: {
        totalMs: Date.now() - this.t0,
        beforePluginMs: this.pluginRequestedAt === undefined ? undefined : this.pluginRequestedAt - this.t0,
        pluginStartMs: this.plugin?.startMs,
        rpc: this.plugin?.calls ?? [],
      },
      pluginPid: this.plugin?.pid,
      pluginStdout: this.plugin?.stdout ?? "",
      pluginStderr: this.plugin?.stderr ?? "",
    };
  }
}

interface MonitorHooks {
  register(req: any): Promise<{ id?: string; state: PropertyMap }>;
  read(req: any): Promise<{ id?: string; state: PropertyMap }>;
  outputs(urn: string, outputs: PropertyMap): void;
}

/**
 * Runs a program in a fresh SDK state store with the mock monitor, handing each registration's raw request to
 * `hooks`. Resolves with the stack outputs (plain JS values) or rejects with the program's error.
 */
async function executeProgram(
  program: Program,
  opts: EngineOptions & { preview: boolean },
  hooks: MonitorHooks,
): Promise<unknown> {
  const project = opts.project ?? "project";
  const stack = opts.stack ?? "stack";
  const { plain, secretKeys } = splitConfig(opts.config);
  return runtimeState.withLocalStorage(async () => {
    let current: { kind: "register" | "read"; req: any } | undefined;
    // Registrations the hooks are still serving: a run that fails early still lets them finish.
    const inFlight = new Set<Promise<unknown>>();
    const mocks: pulumi.runtime.Mocks = {
      newResource: (args) => {
        const c = current;
        current = undefined;
        if (!c) throw new Error(`engine: no raw request captured for ${args.type} ${args.name}`);
        const p = c.kind === "register" ? hooks.register(c.req) : hooks.read(c.req);
        const tracked = p.finally(() => inFlight.delete(tracked));
        inFlight.add(tracked);
        return p as Promise<pulumi.runtime.MockResourceResult>;
      },
      call: (args) => {
        if (opts.call) return opts.call(args);
        throw new Error(`engine: invoke ${args.token} is not supported by the test engine`);
      },
    };
    await pulumi.runtime.setMocks(mocks, project, stack, opts.preview);
    // The mock monitor deserializes inputs before calling newResource (pushing nested secrets up to the top
    // key, turning unknowns into undefined outside preview). The engine sees the raw Struct: capture it.
    const monitor: any = pulumi.runtime.getMonitor();
    const origRegister = monitor.registerResource.bind(monitor);
    const origRead = monitor.readResource.bind(monitor);
    const origOutputs = monitor.registerResourceOutputs.bind(monitor);
    monitor.registerResource = (req: any, cb: any) => {
      current = { kind: "register", req };
      try {
        return origRegister(req, cb);
      } finally {
        current = undefined;
      }
    };
    monitor.readResource = (req: any, cb: any) => {
      current = { kind: "read", req };
      try {
        return origRead(req, cb);
      } finally {
        current = undefined;
      }
    };
    monitor.registerResourceOutputs = (req: any, cb: any) => {
      hooks.outputs(req.getUrn(), dropUndefined(req.getOutputs()?.toJavaScript() ?? {}));
      return origOutputs(req, cb);
    };
    pulumi.runtime.setAllConfig(plain, secretKeys);

    // Like the language host: errors that escape the program (unhandled rejections) fail the run. They end it
    // too, once the registrations under way have finished: a resource whose inputs failed (a dependency's read
    // failed) never resolves its outputs, so a program that waits for them would wait forever. The language
    // host's process exits when nothing is left to do; this one keeps a plugin and gRPC channels open.
    const escaped: unknown[] = [];
    let onFirstEscape: (() => void) | undefined;
    const firstEscape = new Promise<void>((resolve) => (onFirstEscape = resolve));
    const onEscape = (e: unknown) => {
      escaped.push(e);
      onFirstEscape?.();
    };
    const failFast = firstEscape.then(async () => {
      while (inFlight.size) await Promise.allSettled([...inFlight]);
      throw escaped[0];
    });
    failFast.catch(() => undefined); // raced below; never an unhandled rejection of its own
    process.on("unhandledRejection", onEscape);
    process.on("uncaughtException", onEscape);
    try {
      const programRun = pulumi.runtime.runInPulumiStack(async () => {
        if (typeof program === "function") return program();
        const file = require.resolve(path.resolve(opts.cwd ?? process.cwd(), program));
        delete require.cache[file];
        let mod = require(file);
        if (
          mod &&
          typeof mod === "object" &&
          typeof mod.default === "function" &&
          Object.keys(mod).length <= 2
        ) {
          mod = mod.default;
        }
        return typeof mod === "function" ? mod() : mod;
      });
      programRun.catch(() => undefined); // raced below: its rejection is the race's
      const outputs = await Promise.race([programRun, failFast]);
      await Promise.race([runtimeSettings.waitForRPCs(), failFast]);
      if (escaped.length > 0) throw escaped[0];
      return outputs;
    } finally {
      // Let rejections raised by the last callbacks surface while our handler is still installed.
      await new Promise((r) => setImmediate(r));
      process.off("unhandledRejection", onEscape);
      process.off("uncaughtException", onEscape);
    }
  });
}

function registrationOf(kind: "register" | "read", req: any, project: string, stack: string): Registration {
  const type: string = req.getType();
  const name: string = req.getName();
  const parent: string = req.getParent() || undefined;
  const inputs = dropUndefined(
    (kind === "register" ? req.getObject() : req.getProperties())?.toJavaScript() ?? {},
  );
  const reg: Registration = {
    kind,
    urn: makeUrn(project, stack, parent, type, name),
    type,
    name,
    custom: kind === "read" ? true : req.getCustom(),
    parent,
    inputs,
    dependencies: req.getDependenciesList(),
    provider: req.getProvider() || undefined,
    options: {
      deleteBeforeReplace: kind === "register" ? req.getDeletebeforereplace() : false,
      ignoreChanges: kind === "register" ? req.getIgnorechangesList() : [],
      replaceOnChanges: kind === "register" ? req.getReplaceonchangesList() : [],
      additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
      retainOnDelete: kind === "register" ? !!req.getRetainondelete() : false,
      protect: kind === "register" ? !!req.getProtect() : false,
    },
  };
  if (kind === "read") reg.importId = req.getId();
  else if (req.getImportid()) reg.importId = req.getImportid();
  return reg;
}

function baseState(reg: Registration): ResourceState {
  const s: ResourceState = { urn: reg.urn, type: reg.type, custom: reg.custom, inputs: {}, outputs: {} };
  if (reg.parent) s.parent = reg.parent;
  if (reg.dependencies.length) s.dependencies = reg.dependencies;
  if (reg.provider) s.provider = reg.provider;
  if (reg.options.deleteBeforeReplace) s.deleteBeforeReplace = true;
  if (reg.options.retainOnDelete) s.retainOnDelete = true;
  if (reg.options.additionalSecretOutputs.length)
    s.additionalSecretOutputs = reg.options.additionalSecretOutputs;
  return s;
}

function applyIgnoreChanges(
  oldInputs: PropertyMap | undefined,
  news: PropertyMap,
  ignore: string[],
): PropertyMap {
  if (!oldInputs || ignore.length === 0) return news;
  const result = { ...news };
  for (const k of ignore) {
    if (k in oldInputs) result[k] = oldInputs[k];
    else delete result[k];
  }
  return result;
}

/**
 * `pulumi up` (or `pulumi preview` with preview: true): runs the program; per dynamic resource Check, then
 * Create, or Diff and nothing / Update / replace; deletes what the program no longer registers.
 * Throws DeploymentError (with `.result`) when any step or the program failed; the state is saved either way.
 */
export async function up(opts: UpOptions): Promise<UpResult> {
  const preview = !!opts.preview;
  const run = new Run(opts);
  const old = loadState(opts);
  const oldByUrn = new Map(old.resources.map((r) => [r.urn, r]));
  const newStates = new Map<string, ResourceState>();
  const order: string[] = [];
  const condemned: ResourceState[] = []; // old halves of create-before-delete replacements
  const replaceOps = new Map<string, Operation>();
  let stackOutputs: PropertyMap = {};
  let stackUrn: string | undefined;

  const register = async (req: any): Promise<{ id?: string; state: PropertyMap }> => {
    const reg = registrationOf("register", req, run.project, run.stack);
    run.registrations.push(reg);
    order.push(reg.urn);
    const prior = oldByUrn.get(reg.urn);
    const op: Operation = {
      op: prior ? "same" : "create",
      urn: reg.urn,
      type: reg.type,
      name: reg.name,
      custom: reg.custom,
      dynamic: reg.custom && isDynamic(reg.type, reg.inputs),
      calls: [],
    };
    run.ops.push(op);
    if (reg.type === STACK_TYPE) stackUrn = reg.urn;

    if (!op.dynamic) {
      // Stack, components, other providers' resources: no provider behind them here; echo the inputs.
      const st = baseState(reg);
      st.inputs = reg.inputs;
      st.outputs = reg.inputs;
      if (reg.custom) st.id = prior?.id ?? `${reg.name}_id`;
      if (prior && !deepEqual(prior.inputs, reg.inputs)) op.op = "update";
      op.id = st.id;
      newStates.set(reg.urn, st);
      return { id: st.id, state: reg.inputs };
    }

    if (run.failed) {
      const msg = "not processed: the deployment already failed";
      op.error = msg;
      throw new Error(`${reg.urn}: ${msg}`);
    }
    try {
      return await stepDynamic(reg, prior, op);
    } catch (e) {
      const msg = run.fail(op, e);
      throw new Error(msg);
    }
  };

  const stepDynamic = async (
    reg: Registration,
    prior: ResourceState | undefined,
    op: Operation,
  ): Promise<{ id?: string; state: PropertyMap }> => {
    const plugin = await run.getPlugin();
    const existing = prior && prior.type === reg.type && prior.id ? prior : undefined;
    const goal = applyIgnoreChanges(existing?.inputs, reg.inputs, reg.options.ignoreChanges);
    if (prior && !existing) condemned.push(prior); // same URN, another type: replace it

    const check = async (olds: PropertyMap): Promise<PropertyMap> => {
      op.calls.push("check");
      const r = await plugin.check(reg.urn, olds, goal);
      if (r.failures.length > 0) {
        op.failures = r.failures;
        throw new Error("check failed: " + r.failures.map((f) => `${f.property}: ${f.reason}`).join("; "));
      }
      const inputs = annotateSecrets(r.inputs, goal);
      op.checkedInputs = inputs;
      return inputs;
    };

    const create = async (inputs: PropertyMap): Promise<{ id?: string; state: PropertyMap }> => {
      if (preview) return { id: undefined, state: inputs };
      op.calls.push("create");
      const st = baseState(reg);
      st.inputs = inputs;
      try {
        const r = await plugin.create(reg.urn, inputs);
        if (!r.id) throw new Error(`plugin returned empty resource.ID from create '${reg.urn}'`);
        st.id = r.id;
        st.outputs = markAdditionalSecrets(
          annotateSecrets(r.properties, inputs),
          reg.options.additionalSecretOutputs,
        );
      } catch (e) {
        if (e instanceof PluginError && e.initFailed) {
          // The resource exists: keep it, with its init errors (the next up updates it).
          st.id = e.initFailed.id;
          st.outputs = markAdditionalSecrets(
            annotateSecrets(dropUndefined(e.initFailed.properties), inputs),
            reg.options.additionalSecretOutputs,
          );
          st.initErrors = e.initFailed.reasons;
          newStates.set(reg.urn, st);
          op.id = st.id;
        }
        throw e;
      }
      newStates.set(reg.urn, st);
      op.id = st.id;
      op.outputs = st.outputs;
      return { id: st.id, state: st.outputs };
    };

    if (!existing) {
      op.op = "create";
      return create(await check({}));
    }

    op.oldInputs = existing.inputs;
    op.oldOutputs = existing.outputs;
    op.id = existing.id;
    // A failure below leaves the old resource as it was.
    newStates.set(reg.urn, existing);
    let inputs = await check(existing.inputs);
    op.calls.push("diff");
    const d = await plugin.diff(existing.id!, reg.urn, existing.outputs, inputs, existing.inputs);
    const keys = changedKeys(existing.inputs, inputs);
    op.diff = {
      changes: d.changes,
      replaces: d.replaces,
      deleteBeforeReplace: d.deleteBeforeReplace,
      changedKeys: keys,
    };
    // No diff() in the provider: the engine compares old and new inputs itself.
    let changes = d.changes === "unknown" ? (keys.length > 0 ? "some" : "none") : d.changes;
    const replaces = [...d.replaces];
    for (const k of reg.options.replaceOnChanges) {
      if ((k === "*" ? keys.length > 0 : keys.includes(k)) && !replaces.includes(k)) replaces.push(k);
    }
    if (changes === "none" && replaces.length > 0) changes = "some";
    if (changes === "none" && existing.initErrors?.length) changes = "some"; // the engine retries init

    if (changes === "none") {
      op.op = "same";
      const st: ResourceState = { ...baseState(reg), id: existing.id, inputs, outputs: existing.outputs };
      newStates.set(reg.urn, st);
      return { id: existing.id, state: existing.outputs };
    }

    if (replaces.length === 0) {
      op.op = "update";
      if (preview) return { id: existing.id, state: inputs };
      op.calls.push("update");
      const st: ResourceState = { ...baseState(reg), id: existing.id, inputs, outputs: {} };
      try {
        const r = await plugin.update(existing.id!, reg.urn, existing.outputs, inputs, existing.inputs);
        st.outputs = markAdditionalSecrets(
          annotateSecrets(r.properties, inputs),
          reg.options.additionalSecretOutputs,
        );
      } catch (e) {
        if (e instanceof PluginError && e.initFailed) {
          st.outputs = markAdditionalSecrets(
            annotateSecrets(dropUndefined(e.initFailed.properties), inputs),
            reg.options.additionalSecretOutputs,
          );
          st.initErrors = e.initFailed.reasons;
          newStates.set(reg.urn, st);
        }
        throw e;
      }
      newStates.set(reg.urn, st);
      op.outputs = st.outputs;
      return { id: existing.id, state: st.outputs };
    }

    // Replacement: the engine re-checks with no olds (defaults are no longer carried over from the old one).
    op.op = "replace";
    const dbr = d.deleteBeforeReplace || reg.options.deleteBeforeReplace;
    op.deleteBeforeReplace = dbr;
    inputs = await check({});
    if (preview) return { id: undefined, state: inputs };
    if (dbr) {
      op.calls.push("delete");
      await plugin.delete(existing.id!, reg.urn, existing.outputs, existing.inputs);
      newStates.delete(reg.urn);
    } else {
      condemned.push(existing);
      replaceOps.set(existing.urn, op);
    }
    return create(inputs);
  };

  const read = async (req: any): Promise<{ id?: string; state: PropertyMap }> => {
    const reg = registrationOf("read", req, run.project, run.stack);
    run.registrations.push(reg);
    order.push(reg.urn);
    const op: Operation = {
      op: "read",
      urn: reg.urn,
      type: reg.type,
      name: reg.name,
      custom: true,
      dynamic: isDynamic(reg.type, reg.inputs),
      calls: [],
      id: reg.importId,
    };
    run.ops.push(op);
    const st: ResourceState = {
      ...baseState(reg),
      id: reg.importId,
      inputs: reg.inputs,
      outputs: reg.inputs,
    };
    st.external = true;
    if (op.dynamic && !preview) {
      try {
        const plugin = await run.getPlugin();
        op.calls.push("read");
        const r = await plugin.read(reg.importId!, reg.urn, reg.inputs);
        if (!r.id) throw new Error(`resource '${reg.importId}' does not exist`);
        st.outputs = annotateSecrets(r.properties, reg.inputs);
        if (r.inputs) st.inputs = annotateSecrets(r.inputs, reg.inputs);
      } catch (e) {
        throw new Error(run.fail(op, e));
      }
    }
    newStates.set(reg.urn, st);
    return { id: st.id, state: st.outputs };
  };

  let programMs: number | undefined;
  try {
    const tp = Date.now();
    try {
      await executeProgram(
        opts.program,
        { ...opts, preview },
        {
          register,
          read,
          outputs: (urn, outputs) => {
            if (urn === stackUrn) stackOutputs = outputs;
            const st = newStates.get(urn);
            if (st && !st.custom) st.outputs = outputs;
          },
        },
      );
    } catch (e) {
      // Registration failures are already recorded; anything else is the program's own error.
      if (!run.failed) run.fail(undefined, e);
      else if (!run.errors.some((m) => errorText(e).includes(m))) run.errors.push(`program: ${errorText(e)}`);
    }
    programMs = Date.now() - tp;

    // Deletions: what the program no longer registers, and the old halves of replacements; reverse order.
    const registered = new Set(order);
    const oldIndex = new Map(old.resources.map((r, i) => [r.urn, i]));
    const toDelete = [...condemned, ...old.resources.filter((r) => !registered.has(r.urn))].sort(
      (a, b) => (oldIndex.get(b.urn) ?? 0) - (oldIndex.get(a.urn) ?? 0),
    );
    if (!run.failed) {
      for (const r of toDelete) {
        const replaced = replaceOps.get(r.urn);
        const isCondemned = condemned.includes(r);
        const op: Operation = isCondemned && replaced ? replaced : deleteOperation(r);
        if (!replaced || !isCondemned) run.ops.push(op);
        if (!op.dynamic || !r.id || r.external || preview) continue;
        if (r.retainOnDelete) {
          op.retained = true;
          continue;
        }
        if (!(await providerDelete(run, op, r))) {
          // Keep it in the state: it still exists.
          if (!newStates.has(r.urn)) newStates.set(r.urn, r);
          else if (isCondemned) newStates.set(r.urn + "#pending-delete", r);
          break;
        }
      }
    }

    // The new snapshot: this run's registrations in order; on failure also the untouched old resources.
    const resources: ResourceState[] = [];
    for (const urn of order) {
      const st = newStates.get(urn);
      if (st && !resources.includes(st)) resources.push(st);
    }
    for (const [k, st] of newStates) if (k.endsWith("#pending-delete")) resources.push(st);
    if (run.failed) {
      for (const r of old.resources) if (!registered.has(r.urn) && !resources.includes(r)) resources.push(r);
    }
    const state: StackState = { version: 1, resources };
    if (!preview) saveState(opts, state);

    const base = run.result(preview ? "preview" : "up", preview ? old : state);
    base.timing.programMs = programMs;
    const result: UpResult = { ...base, outputs: stackOutputs, registrations: run.registrations };
    if (run.failed)
      throw new DeploymentError(
        `${preview ? "preview" : "update"} failed:\n  ${run.errors.join("\n  ")}`,
        result,
      );
    return result;
  } finally {
    await run.close();
  }
}

/** `pulumi preview`: Check and Diff only; the result lists the plan and the checked inputs. */
export function preview(opts: Omit<UpOptions, "preview">): Promise<UpResult> {
  return up({ ...opts, preview: true });
}

/**
 * `pulumi refresh`: Read(id, old outputs, old inputs) for each dynamic resource in the state. An empty id
 * removes the resource; returned `inputs` replace the stored inputs. Does not run the program.
 */
export async function refresh(opts: EngineOptions & { preview?: boolean }): Promise<RefreshResult> {
  const run = new Run(opts);
  const old = loadState(opts);
  const changes: RefreshChange[] = [];
  try {
    const next = await Promise.all(
      old.resources.map(async (r): Promise<ResourceState | undefined> => {
        const dynamic = r.custom && isDynamic(r.type, r.inputs);
        if (!dynamic || !r.id) return r;
        const op: Operation = {
          op: "same",
          urn: r.urn,
          type: r.type,
          name: r.urn.split("::").pop() ?? "",
          custom: true,
          dynamic: true,
          calls: ["read"],
          id: r.id,
          oldInputs: r.inputs,
          oldOutputs: r.outputs,
        };
        run.ops.push(op);
        const change: RefreshChange = {
          urn: r.urn,
          id: r.id,
          op: "same",
          changedKeys: [],
          outputsBefore: r.outputs,
          inputsBefore: r.inputs,
        };
        changes.push(change);
        try {
          const plugin = await run.getPlugin();
          const got = await plugin.read(r.id, r.urn, r.outputs, r.inputs);
          if (!got.id) {
            op.op = change.op = "delete";
            return undefined;
          }
          const outputs = annotateSecrets(got.properties, r.outputs);
          const inputs = got.inputs ? annotateSecrets(got.inputs, r.inputs) : r.inputs;
          change.outputsAfter = outputs;
          change.inputsAfter = inputs;
          change.changedKeys = changedKeys(r.outputs, outputs);
          const inputsChanged = changedKeys(r.inputs, inputs).length > 0;
          if (change.changedKeys.length > 0 || inputsChanged) op.op = change.op = "update";
          op.outputs = outputs;
          return { ...r, id: got.id, inputs, outputs };
        } catch (e) {
          run.fail(op, e);
          return r;
        }
      }),
    );
    const state: StackState = { version: 1, resources: next.filter((r): r is ResourceState => !!r) };
    if (!opts.preview && !run.failed) saveState(opts, state);
    changes.sort(
      (a, b) =>
        old.resources.findIndex((r) => r.urn === a.urn) - old.resources.findIndex((r) => r.urn === b.urn),
    );
    const result: RefreshResult = {
      ...run.result("refresh", opts.preview || run.failed ? old : state),
      changes,
    };
    if (run.failed) throw new DeploymentError(`refresh failed:\n  ${run.errors.join("\n  ")}`, result);
    return result;
  } finally {
    await run.close();
  }
}

/** Delete(id, outputs, inputs) through the plugin; false, with the run failed, when the provider refused. */
async function providerDelete(run: Run, op: Operation, r: ResourceState): Promise<boolean> {
  try {
    const plugin = await run.getPlugin();
    op.calls.push("delete");
    await plugin.delete(r.id!, r.urn, r.outputs, r.inputs);
    return true;
  } catch (e) {
    run.fail(op, e);
    return false;
  }
}

function deleteOperation(r: ResourceState): Operation {
  return {
    op: "delete",
    urn: r.urn,
    type: r.type,
    name: r.urn.split("::").pop() ?? "",
    custom: r.custom,
    dynamic: r.custom && isDynamic(r.type, r.inputs),
    calls: [],
    id: r.id,
    oldInputs: r.inputs,
    oldOutputs: r.outputs,
  };
}

/**
 * The order in which `pulumi destroy` deletes: "antichains", each the resources nothing still to be deleted
 * depends on (dependencies, parent, provider), deleted in parallel; one antichain after the other. Within one,
 * newest first. A dependency cycle (which the engine never records) falls back to one at a time.
 */
export function deleteAntichains(resources: ResourceState[]): ResourceState[][] {
  const newestFirst = [...resources].reverse();
  const left = new Set(newestFirst.map((r) => r.urn));
  const dependsOn = (r: ResourceState) =>
    [...(r.dependencies ?? []), r.parent, r.provider?.split("::").slice(0, -1).join("::")].filter(
      (u): u is string => !!u && u !== r.urn,
    );
  const chains: ResourceState[][] = [];
  while (left.size) {
    const pending = newestFirst.filter((r) => left.has(r.urn));
    const held = new Set(pending.flatMap(dependsOn));
    let free = pending.filter((r) => !held.has(r.urn));
    if (!free.length) free = [pending[0]];
    chains.push(free);
    for (const r of free) left.delete(r.urn);
  }
  return chains;
}

/** `pulumi destroy`: Delete(id, outputs, inputs) for every resource, antichain by antichain (see above). */
export async function destroy(opts: EngineOptions & { preview?: boolean }): Promise<RunResult> {
  const run = new Run(opts);
  const old = loadState(opts);
  const remaining = [...old.resources];
  try {
    for (const chain of deleteAntichains(old.resources)) {
      await Promise.all(
        chain.map(async (r) => {
          const op = deleteOperation(r);
          run.ops.push(op);
          if (opts.preview) return;
          if (op.dynamic && r.id && !r.external) {
            if (r.retainOnDelete) op.retained = true;
            else if (!(await providerDelete(run, op, r))) return; // still in the state: it still exists
          }
          remaining.splice(remaining.indexOf(r), 1);
        }),
      );
      // Like the engine: the deletes already started finish; no new antichain starts after a failure.
      if (run.failed) break;
    }
    const state: StackState = { version: 1, resources: remaining };
    if (!opts.preview) saveState(opts, state);
    const result = run.result("destroy", opts.preview ? old : state);
    if (run.failed) throw new DeploymentError(`destroy failed:\n  ${run.errors.join("\n  ")}`, result);
    return result;
  } finally {
    await run.close();
  }
}

/**
 * Runs a program with no engine behind it (every resource echoes its inputs, no plugin) and returns every
 * registration's raw inputs, `__provider` included, plus the stack outputs.
 */
export async function captureRegistrations(
  program: Program,
  opts: EngineOptions & { preview?: boolean } = {},
): Promise<{ registrations: Registration[]; outputs: PropertyMap }> {
  const registrations: Registration[] = [];
  const project = opts.project ?? "project";
  const stack = opts.stack ?? "stack";
  let outputs: PropertyMap = {};
  let stackUrn: string | undefined;
  await executeProgram(
    program,
    { ...opts, preview: !!opts.preview },
    {
      register: async (req) => {
        const reg = registrationOf("register", req, project, stack);
        registrations.push(reg);
        if (reg.type === STACK_TYPE) stackUrn = reg.urn;
        return { id: reg.custom ? `${reg.name}_id` : undefined, state: reg.inputs };
      },
      read: async (req) => {
        const reg = registrationOf("read", req, project, stack);
        registrations.push(reg);
        return { id: reg.importId, state: reg.inputs };
      },
      outputs: (urn, outs) => {
        if (urn === stackUrn) outputs = outs;
      },
    },
  );
  return { registrations, outputs };
}

/** The operation for the resource with this name (the last one, when there are several). */
export function findOp(result: RunResult, name: string): Operation | undefined {
  return [...result.operations].reverse().find((o) => o.name === name);
}

/** The state entry for the resource with this name. */
export function findResource(state: StackState, name: string): ResourceState | undefined {
  return state.resources.find((r) => r.urn.split("::").pop() === name);
}

/**
 * A stack that keeps its state between runs: `up`, `preview`, `refresh`, `destroy` against one state (in memory,
 * or in `stateFile` when given).
 */
export class TestStack {
  readonly state: StackState;

  constructor(readonly options: Omit<EngineOptions, "state"> = {}) {
    this.state = options.stateFile ? loadState(options) : emptyState();
  }

  private get engineOptions(): EngineOptions {
    return this.options.stateFile ? { ...this.options } : { ...this.options, state: this.state };
  }

  async up(program: Program, extra: Partial<EngineOptions> = {}): Promise<UpResult> {
    return this.sync(up({ ...this.engineOptions, ...extra, program }));
  }

  async preview(program: Program, extra: Partial<EngineOptions> = {}): Promise<UpResult> {
    return up({ ...this.engineOptions, ...extra, program, preview: true });
  }

  async refresh(extra: Partial<EngineOptions> = {}): Promise<RefreshResult> {
    return this.sync(refresh({ ...this.engineOptions, ...extra }));
  }

  async destroy(extra: Partial<EngineOptions> = {}): Promise<RunResult> {
    return this.sync(destroy({ ...this.engineOptions, ...extra }));
  }

  private async sync<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } finally {
      if (this.options.stateFile && fs.existsSync(this.options.stateFile)) {
        const s = loadState({ stateFile: this.options.stateFile });
        this.state.resources = s.resources;
      }
    }
  }
}

/**
 * Quick one-shot `pulumi up` of an inline program against a fresh in-memory state (or the options' state).
 * `fn` creates resources and returns the stack outputs.
 */
export function runProgramUp(fn: ProgramFn, opts: Omit<UpOptions, "program"> = {}): Promise<UpResult> {
  return up({ state: emptyState(), ...opts, program: fn });
}

export { runProgramUp as runProgram };

/** Every registration the program made in that run: raw wire inputs, `__provider` included. */
export function getRegistrations(result: UpResult): Registration[] {
  return result.registrations;
}
