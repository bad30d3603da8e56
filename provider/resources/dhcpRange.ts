// DhcpRange's provider operations on plain objects.
import { validateConnection } from "../host";
import { Host } from "../host/host";
import { buildRangeSpec, DhcpRangeInputs, DhcpRangeSpec } from "../model/dhcpRange";
import { applyRange, deleteRange, NetworkRef, readRange } from "../orchestration/range";
import { readLeases } from "../orchestration/leases";
import { renderDhcpHosts } from "../render/dnsmasq";
import { containsUnknown } from "../model/validation";
import { modeUsesExistingBridge } from "../model/modes";
import { checkNetworkRef } from "./networkRef";
import { connectTo, Credentials, resolveConnection } from "./connection";
import { changedKeys, checked, keepHidden, pick, Props, required, stackOf } from "./props";
import { RANGE_INPUT_KEYS } from "../model/inputs";

function rangeInputs(props: Props): DhcpRangeInputs {
  return pick(RANGE_INPUT_KEYS, props);
}

function specOf(props: Props) {
  const net = props.network ?? {};
  return buildRangeSpec(rangeInputs(props), props.name, {
    cidr: net.cidr,
    gateway: net.gatewayIp,
    ipv6Cidr: net.ipv6Cidr,
    ipv6Gateway: net.ipv6Gateway,
  });
}

function rendered(spec: DhcpRangeSpec): Props {
  const r: Props = {
    dhcpRange: `${spec.start},${spec.static ? "static" : spec.end},${spec.leaseTime}`,
  };
  if (spec.hosts.length) r.dhcpHosts = renderDhcpHosts([spec]);
  return r;
}

export function check(_olds: Props, news: Props) {
  const failures = [...validateConnection(resolveConnection(news.connection, news.__credentials)).errors];
  failures.push(...checkNetworkRef(news.network, true));
  if (news.network?.mode !== undefined && modeUsesExistingBridge(news.network.mode))
    failures.push({
      property: "network",
      reason: `network "${news.network.name}" is mode "bridge": its guests get DHCP from the LAN behind the host's bridge, virtnet runs no DHCP server on it`,
    });
  const r = specOf(news);
  failures.push(...r.errors);
  return checked(news, failures, r.spec, rendered);
}

function refOf(props: Props): NetworkRef {
  const n = props.network;
  return { name: n.name, bridge: n.bridgeName };
}

function outputs(props: Props, spec: DhcpRangeSpec, host: Host): Props {
  // Input keys are echoed as given (a refresh rebuilds the inputs from them); computed values get own names.
  const outs: Props = { ...props, size: spec.size, effectiveLeaseTime: spec.leaseTime };
  delete outs.__provider;
  outs.rendered = rendered(spec);
  outs.host = host.label;
  return outs;
}

export function diff(_id: string, olds: Props, news: Props) {
  const changed = changedKeys([...RANGE_INPUT_KEYS, "connection", "__credentials", "network"], olds, news);
  const replaces: string[] = [];
  const target = (p: Props) => {
    const c = resolveConnection(p.connection);
    return `${c.host}:${c.port ?? 22}/${p.network?.name}`;
  };
  if (
    containsUnknown(news.connection) ||
    containsUnknown(news.network?.name) ||
    target(olds) !== target(news)
  )
    replaces.push("network");
  if ((news.name ?? olds.name) !== olds.name) replaces.push("name");
  return { changes: changed.length > 0, replaces, deleteBeforeReplace: replaces.length > 0 };
}

export async function create(inputs: Props, opts: { failAfter?: string } = {}) {
  const spec = required(specOf(inputs));
  const host = await connectTo(inputs);
  await applyRange(host, refOf(inputs), spec, { ...opts, stack: stackOf(inputs) });
  return { id: `${refOf(inputs).name}/${spec.name}`, outs: outputs(inputs, spec, host) };
}

export async function update(_id: string, _olds: Props, news: Props) {
  const spec = required(specOf(news));
  const host = await connectTo(news);
  await applyRange(host, refOf(news), spec, { stack: stackOf(news) });
  return { outs: outputs(news, spec, host) };
}

export async function remove(_id: string, props: Props): Promise<void> {
  await deleteRange(await connectTo(props), refOf(props), props.name);
}

export async function read(id: string, props: Props) {
  const host = await connectTo(props);
  const found = await readRange(host, refOf(props), props.name);
  if (!found) return { id: "", props: {} };
  const { stack: _stack, ...recorded } = found; // who declared it is no input of the range
  const inputs = { ...rangeInputs(props) } as Props;
  const spec = required(specOf(props));
  const outs = outputs(props, spec, host);
  // A range changed on the host shows as a diff of its inputs on the next preview.
  if (JSON.stringify(recorded) !== JSON.stringify(spec)) {
    Object.assign(inputs, {
      // A static-only range has no ends of its own.
      start: recorded.static ? undefined : recorded.start,
      end: recorded.static ? undefined : recorded.end,
      leaseTime: recorded.leaseTime,
      hosts: recorded.hosts,
    });
  }
  // The same shape check returns, so a refresh alone never makes the next preview show a change.
  const newInputs: Props = {
    ...inputs,
    name: spec.name,
    network: props.network,
    connection: props.connection,
    rendered: rendered(spec),
  };
  keepHidden(newInputs, props, ["__credentials", "__stack"]);
  return { id, props: outs, inputs: newInputs };
}

export async function leases(connection: Props, credentials: Credentials | undefined, networkName: string) {
  const host = await connectTo({ connection, __credentials: credentials });
  return readLeases(host, networkName);
}
