// NetworkExtension's provider operations on plain objects. Its props: `network` (the VirtualNetwork's id, name
// and bridge), `networkConnection` and `__networkCredentials` (the network's host), `connection` and
// `__credentials` (the joining host), `localAddress`, `vni`, and `__peers`: the connections of the network's
// other extensions in the same program, which a change of membership must reach too.
import { hostLabel, validateConnection } from "../host";
import { Host } from "../host/host";
import { EXTENSION_INPUT_KEYS } from "../model/inputs";
import { buildExtensionSpec, ExtensionSpec, segmentAddresses } from "../model/networkExtension";
import { containsUnknown, PropertyError } from "../model/validation";
import {
  joinSegment,
  leaveSegment,
  readExtension,
  SegmentHosts,
  SegmentResult,
} from "../orchestration/extension";
import { checkNetworkRef } from "./networkRef";
import { connectTo, Credentials, resolveConnection } from "./connection";
import { changedKeys, pick, Props, required as requiredSpec, stackOf } from "./props";

const target = (connection: Props | undefined) => {
  const c = resolveConnection(connection);
  return `${c.host}:${c.port ?? 22}`;
};

function specOf(props: Props) {
  const n = props.network ?? {};
  const network = { id: n.id, name: n.name, bridge: n.bridgeName };
  return buildExtensionSpec({ ...pick(EXTENSION_INPUT_KEYS, props), name: props.name, network }, props.name);
}

const required = (props: Props): ExtensionSpec => requiredSpec(specOf(props));

export function check(_olds: Props, news: Props) {
  const failures: PropertyError[] = [
    ...validateConnection(resolveConnection(news.connection, news.__credentials)).errors,
    ...checkNetworkRef(news.network, true),
    ...specOf(news).errors,
  ];
  if (
    !failures.length &&
    !containsUnknown(news.connection) &&
    !containsUnknown(news.networkConnection) &&
    news.networkConnection &&
    target(news.connection) === target(news.networkConnection)
  )
    failures.push({
      property: "connection",
      reason: `is the network's own host (${target(news.connection)}): an extension joins the network from another host`,
    });
  return { inputs: { ...news }, failures };
}

// The connections this process has seen for each host label, from every extension's props: a change of one
// extension reaches the other members through them (a member whose extension was never seen here is skipped,
// with a warning, and repaired by its own next up).
const phonebook = new Map<string, { connection: Props; credentials?: Credentials }>();

function learn(connection: Props | undefined, credentials: Credentials | undefined): void {
  if (!connection || containsUnknown(connection)) return;
  const label = hostLabel(resolveConnection(connection, credentials));
  phonebook.set(label, { connection, ...(credentials ? { credentials } : {}) });
}

async function hostsOf(props: Props): Promise<SegmentHosts> {
  for (const p of Array.isArray(props.__peers) ? props.__peers : []) learn(p?.connection, p?.credentials);
  learn(props.networkConnection, props.__networkCredentials);
  learn(props.connection, props.__credentials);
  const [home, self] = await Promise.all([
    connectTo({ connection: props.networkConnection, __credentials: props.__networkCredentials }),
    connectTo(props),
  ]);
  return {
    home,
    self,
    async peer(label: string): Promise<Host | undefined> {
      const known = phonebook.get(label);
      return known && connectTo({ connection: known.connection, __credentials: known.credentials });
    },
  };
}

/** The outputs a host gives: from a join's result, or from the outputs a read or an earlier change gave. */
const COMPUTED_KEYS = ["bridgeName", "vxlanName", "effectiveVni", "effectiveLocalAddress", "mtu", "members"];

function computedOf(r: Pick<SegmentResult, "member" | "segment">): Props {
  const m = r.member;
  return {
    bridgeName: m.bridge,
    vxlanName: m.vxlan,
    effectiveVni: m.vni,
    effectiveLocalAddress: m.local,
    mtu: m.mtu,
    members: segmentAddresses(r.segment),
  };
}

function outputs(props: Props, host: Host, computed: Props, drift: string[], warnings: string[]) {
  const outs: Props = { ...props, ...computed, host: host.label, drift, warnings };
  delete outs.__provider;
  return outs;
}

export async function create(inputs: Props, opts: { failAfter?: string } = {}) {
  const spec = required(inputs);
  const hosts = await hostsOf(inputs);
  const r = await joinSegment(spec, hosts, { ...opts, stack: stackOf(inputs) });
  return {
    id: `${target(inputs.connection)}/extension/${spec.network.name}`,
    outs: outputs(inputs, hosts.self, computedOf(r), [], r.warnings),
  };
}

/** Keys whose change changes a host; the others (credentials, the other members' connections) only the state. */
const HOST_KEYS = ["network", "connection", ...EXTENSION_INPUT_KEYS] as const;
const STATE_KEYS = ["networkConnection", "__networkCredentials", "__credentials", "__peers"] as const;

export function diff(_id: string, olds: Props, news: Props) {
  const changed = changedKeys([...HOST_KEYS, ...STATE_KEYS], olds, news);
  const replaces: string[] = [];
  if (containsUnknown(news.connection) || target(olds.connection) !== target(news.connection))
    replaces.push("connection");
  const net = (p: Props) => `${p.network?.id}|${p.network?.name}|${p.network?.bridgeName}`;
  if (containsUnknown(news.network) || net(olds) !== net(news)) replaces.push("network");
  // The segment's VNI is the same on every member: it changes only by leaving and joining again.
  if (changedKeys(["vni"], olds, news).length) replaces.push("vni");
  const drifted = Array.isArray(olds.drift) && olds.drift.length > 0;
  return {
    changes: changed.length > 0 || drifted,
    replaces,
    deleteBeforeReplace: replaces.includes("network") || replaces.includes("vni"),
  };
}

export async function update(_id: string, olds: Props, news: Props) {
  const spec = required(news);
  const hosts = await hostsOf(news);
  const drifted = Array.isArray(olds.drift) && olds.drift.length > 0;
  if (!drifted && changedKeys(HOST_KEYS, olds, news).length === 0 && olds.effectiveLocalAddress) {
    // Only credentials or the list of the other members' connections changed: nothing on any host.
    return { outs: outputs(news, hosts.self, pick(COMPUTED_KEYS, olds), [], []) };
  }
  const r = await joinSegment(spec, hosts, { stack: stackOf(news) });
  return { outs: outputs(news, hosts.self, computedOf(r), [], r.warnings) };
}

export async function remove(_id: string, props: Props): Promise<void> {
  await leaveSegment(required(props), await hostsOf(props));
}

export async function read(id: string, props: Props) {
  const spec = required(props);
  const hosts = await hostsOf(props);
  const status = await readExtension(spec, hosts);
  if (!status.exists && !status.member) return { id: "", props: {} };
  // Not a member in the network host's record (drift): the outputs stay as the last change left them.
  const computed =
    status.member && status.segment
      ? computedOf({ member: status.member, segment: status.segment })
      : pick(COMPUTED_KEYS, props);
  const outs = outputs(props, hosts.self, computed, status.drift, props.warnings ?? []);
  return { id, props: outs, inputs: pick(["name", ...HOST_KEYS, ...STATE_KEYS, "__stack"], props) };
}
