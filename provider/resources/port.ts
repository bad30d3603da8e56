// Port's provider operations on plain objects, and getFdb.
import { validateConnection } from "../host";
import { Host } from "../host/host";
import { PORT_INPUT_KEYS } from "../model/inputs";
import { buildPortSpec, PortInputs, PortSpec } from "../model/port";
import { modeUsesExistingBridge } from "../model/modes";
import { containsUnknown, isUnknown } from "../model/validation";
import { readFdb } from "../orchestration/fdb";
import { portAlias } from "../naming";
import { applyPort, deletePort, readPort } from "../orchestration/port";
import { connectTo, Credentials, resolveConnection } from "./connection";
import { checkNetworkRef } from "./networkRef";
import { changedKeys, keepHidden, pick, Props, required, stackOf } from "./props";

/** The Port's own inputs, and the network it is on (the SDK copies that from a VirtualNetwork). */
const INPUT_KEYS = [...PORT_INPUT_KEYS, "network"] as const;

/** A mode "bridge" network (or one whose mode is not known yet): its bridge's VLAN-awareness is the host's. */
function hostDecides(mode: unknown): boolean {
  return isUnknown(mode) || (typeof mode === "string" && modeUsesExistingBridge(mode));
}

function specOf(props: Props) {
  const net = props.network ?? {};
  const host = resolveConnection(props.connection, props.__credentials).host;
  return buildPortSpec(
    pick(PORT_INPUT_KEYS, props) as PortInputs,
    props.resourceName,
    {
      name: net.name,
      bridgeName: net.bridgeName,
      vlanFiltering: hostDecides(net.mode) ? undefined : net.vlanFiltering,
    },
    host,
  );
}

export function check(_olds: Props, news: Props) {
  const failures = [...validateConnection(resolveConnection(news.connection, news.__credentials)).errors];
  failures.push(...checkNetworkRef(news.network, true));
  const r = specOf(news);
  failures.push(...r.errors);
  const inputs: Props = { ...news };
  // The defaults are kept as inputs: the same on every run, and what outputs and the next diff compare.
  if (r.spec && failures.length === 0) {
    inputs.name = r.spec.name;
    inputs.macAddress = r.spec.macAddress;
  }
  return { inputs, failures };
}

function outputs(props: Props, spec: PortSpec, host: Host, drift: string[], warnings: string[]): Props {
  const outs: Props = { ...props, name: spec.name, bridgeName: spec.bridge, macAddress: spec.macAddress };
  delete outs.__provider;
  outs.host = host.label;
  outs.drift = drift;
  outs.warnings = warnings;
  return outs;
}

function target(p: Props): string {
  const c = resolveConnection(p.connection);
  return `${c.host}:${c.port ?? 22}`;
}

export function diff(_id: string, olds: Props, news: Props) {
  const changed = changedKeys([...INPUT_KEYS, "connection", "__credentials"], olds, news);
  const replaces: string[] = [];
  if (containsUnknown(news.connection) || target(olds) !== target(news)) replaces.push("connection");
  if (containsUnknown(news.network?.name) || news.network?.name !== olds.network?.name)
    replaces.push("network");
  // A TAP's name, owner and queues are fixed when it is made.
  const sameName = news.name === undefined || news.name === olds.name;
  if (!sameName) replaces.push("name");
  replaces.push(...changedKeys(["owner", "multiQueue"], olds, news));
  const drifted = Array.isArray(olds.drift) && olds.drift.length > 0;
  return {
    changes: changed.length > 0 || drifted,
    replaces,
    // The same TAP name on the same host: the old one goes first.
    deleteBeforeReplace: replaces.length > 0 && sameName && !replaces.includes("connection"),
  };
}

export async function create(inputs: Props, opts: { failAfter?: string } = {}) {
  const spec = required(specOf(inputs));
  const host = await connectTo(inputs);
  const result = await applyPort(host, spec, { ...opts, stack: stackOf(inputs) });
  return {
    id: `${target(inputs)}/port/${spec.name}`,
    outs: outputs(inputs, spec, host, [], result.warnings),
  };
}

export async function update(_id: string, _olds: Props, news: Props) {
  const spec = required(specOf(news));
  const host = await connectTo(news);
  const result = await applyPort(host, spec, { stack: stackOf(news) });
  return { outs: outputs(news, spec, host, [], result.warnings) };
}

export async function remove(_id: string, props: Props): Promise<void> {
  const host = await connectTo(props);
  await deletePort(host, props.name, { name: props.network.name, bridge: props.network.bridgeName });
}

export async function read(id: string, props: Props) {
  const spec = required(specOf(props));
  const host = await connectTo(props);
  const status = await readPort(host, spec);
  const ours = status.tap?.alias === portAlias(spec.network);
  if (!status.recorded && !ours) return { id: "", props: {} };
  const inputs: Props = { ...pick([...INPUT_KEYS, "resourceName"], props), connection: props.connection };
  keepHidden(inputs, props, ["__credentials", "__stack"]);
  return { id, props: outputs(props, spec, host, status.drift, []), inputs };
}

/** getFdb: the network's bridge's forwarding database and ports. */
export async function fdb(
  connection: Props,
  credentials: Credentials | undefined,
  network: { name: string; bridgeName: string },
) {
  const host = await connectTo({ connection, __credentials: credentials });
  return readFdb(host, network.name, network.bridgeName);
}
