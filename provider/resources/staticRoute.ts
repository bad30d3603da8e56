// StaticRoute's provider operations on plain objects.
import { validateConnection } from "../host";
import { Host } from "../host/host";
import { applyRoute, deleteRoute, readRoute } from "../orchestration/route";
import { buildRouteSpec, RouteInputs, RouteSpec } from "../model/staticRoute";
import { routeCommand } from "../render/route";
import { containsUnknown } from "../model/validation";
import { checkNetworkRef } from "./networkRef";
import { connectTo, resolveConnection } from "./connection";
import { changedKeys, checked, keepHidden, pick, Props, required, stackOf } from "./props";
import { ROUTE_INPUT_KEYS } from "../model/inputs";

/** The route's own inputs, and the network it goes via (the SDK copies that from a VirtualNetwork). */
const INPUT_KEYS = [...ROUTE_INPUT_KEYS, "network"] as const;

function routeInputs(props: Props): RouteInputs {
  return pick(INPUT_KEYS, props);
}

/** The command virtnet runs, as `preview --diff` shows it. */
function rendered(spec: RouteSpec): string {
  return routeCommand(spec);
}

export function check(_olds: Props, news: Props) {
  const failures = [...validateConnection(resolveConnection(news.connection, news.__credentials)).errors];
  failures.push(...checkNetworkRef(news.network, false));
  const r = buildRouteSpec(routeInputs(news), news.name);
  failures.push(...r.errors);
  return checked(news, failures, r.spec, rendered);
}

function specOf(props: Props): RouteSpec {
  return required(buildRouteSpec(routeInputs(props), props.name));
}

function outputs(props: Props, spec: RouteSpec, host: Host, drift: string[]): Props {
  // Input keys are echoed as given (a refresh rebuilds the inputs from them); computed values get own names.
  const outs: Props = { ...props, effectiveMetric: spec.metric };
  delete outs.__provider;
  if (spec.device) outs.device = spec.device;
  outs.rendered = rendered(spec);
  outs.host = host.label;
  outs.drift = drift;
  return outs;
}

export function diff(_id: string, olds: Props, news: Props) {
  const changed = changedKeys([...INPUT_KEYS, "connection", "__credentials"], olds, news);
  const target = (p: Props) => {
    const c = resolveConnection(p.connection);
    return `${c.host}:${c.port ?? 22}`;
  };
  const replaces: string[] = [];
  if (containsUnknown(news.connection) || target(olds) !== target(news)) replaces.push("connection");
  if ((news.name ?? olds.name) !== olds.name) replaces.push("name");
  const drifted = Array.isArray(olds.drift) && olds.drift.length > 0;
  return { changes: changed.length > 0 || drifted, replaces, deleteBeforeReplace: replaces.includes("name") };
}

export async function create(inputs: Props) {
  const spec = specOf(inputs);
  const host = await connectTo(inputs);
  await applyRoute(host, spec, { stack: stackOf(inputs) });
  const c = resolveConnection(inputs.connection);
  return { id: `${c.host}:${c.port ?? 22}/route/${spec.name}`, outs: outputs(inputs, spec, host, []) };
}

export async function update(_id: string, _olds: Props, news: Props) {
  const spec = specOf(news);
  const host = await connectTo(news);
  await applyRoute(host, spec, { stack: stackOf(news) });
  return { outs: outputs(news, spec, host, []) };
}

export async function remove(_id: string, props: Props): Promise<void> {
  await deleteRoute(await connectTo(props), props.name);
}

export async function read(id: string, props: Props) {
  const spec = specOf(props);
  const host = await connectTo(props);
  const status = await readRoute(host, spec.name);
  if (!status.recorded && !status.kernel) return { id: "", props: {} };
  const drift: string[] = [];
  if (!status.kernel) drift.push(`route to ${spec.destination} is missing from the kernel`);
  else if (status.kernel.gateway !== spec.gateway)
    drift.push(`route to ${spec.destination} goes via ${status.kernel.gateway}, not ${spec.gateway}`);
  const inputs: Props = {
    ...routeInputs(props),
    name: spec.name,
    connection: props.connection,
    rendered: rendered(spec),
  };
  keepHidden(inputs, props, ["__credentials", "__stack"]);
  return { id, props: outputs(props, spec, host, drift), inputs };
}
