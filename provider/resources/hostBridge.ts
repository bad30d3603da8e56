// HostBridge's provider operations on plain objects.
import { validateConnection } from "../host";
import { buildHostBridgeSpec, HostBridgeSpec } from "../model/hostBridge";
import { HOST_BRIDGE_INPUT_KEYS } from "../model/inputs";
import { containsUnknown } from "../model/validation";
import {
  applyHostBridge,
  deleteHostBridge,
  HostBridgeResult,
  readHostBridge,
} from "../orchestration/hostBridge";
import { Credentials } from "./credentials";
import { resolveConnection } from "./connection";
import { changedKeys, checked, pick, Props, required } from "./props";

function specOf(props: Props): HostBridgeSpec {
  return required(buildHostBridgeSpec(pick(HOST_BRIDGE_INPUT_KEYS, props), props.name));
}

function connectionOf(props: Props) {
  return resolveConnection(props.connection, props.__credentials as Credentials | undefined);
}

function target(p: Props): string {
  const c = resolveConnection(p.connection);
  return `${c.host}:${c.port ?? 22}`;
}

export function check(_olds: Props, news: Props) {
  const failures = [...validateConnection(connectionOf(news)).errors];
  const r = buildHostBridgeSpec(pick(HOST_BRIDGE_INPUT_KEYS, news), news.name);
  failures.push(...r.errors);
  return checked(news, failures, r.spec, (s) => ({ bridge: s.name, uplink: s.uplink }));
}

export function diff(_id: string, olds: Props, news: Props) {
  const changed = changedKeys([...HOST_BRIDGE_INPUT_KEYS, "connection", "__credentials"], olds, news);
  const replaces: string[] = [];
  if (containsUnknown(news.connection) || target(olds) !== target(news)) replaces.push("connection");
  // A new bridge or uplink is a new move; stp, forwardDelay, mtu and vlanFiltering change in place.
  for (const k of ["name", "uplink"]) if ((news[k] ?? olds[k]) !== olds[k]) replaces.push(k);
  const drifted = Array.isArray(olds.drift) && olds.drift.length > 0;
  return { changes: changed.length > 0 || drifted, replaces, deleteBeforeReplace: replaces.length > 0 };
}

function outputs(props: Props, r: HostBridgeResult, drift: string[]): Props {
  const outs: Props = { ...props, ...r, drift };
  delete outs.__provider;
  outs.host = target(props);
  return outs;
}

export async function create(inputs: Props) {
  const spec = specOf(inputs);
  const r = await applyHostBridge(connectionOf(inputs), spec);
  return { id: `${target(inputs)}/host-bridge/${spec.name}`, outs: outputs(inputs, r, []) };
}

export async function update(_id: string, _olds: Props, news: Props) {
  const r = await applyHostBridge(connectionOf(news), specOf(news));
  return { outs: outputs(news, r, []) };
}

export async function remove(_id: string, props: Props): Promise<void> {
  await deleteHostBridge(connectionOf(props), specOf(props));
}

export async function read(id: string, props: Props) {
  const spec = specOf(props);
  const status = await readHostBridge(connectionOf(props), spec);
  if (!status.exists || !status.result) return { id: "", props: {} };
  const inputs: Props = {
    ...pick(HOST_BRIDGE_INPUT_KEYS, props),
    name: spec.name,
    connection: props.connection,
  };
  if (props.__credentials !== undefined) inputs.__credentials = props.__credentials;
  return { id, props: outputs(props, status.result, status.drift), inputs };
}
