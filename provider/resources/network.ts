// VirtualNetwork's provider operations on plain objects. The SDK's dynamic provider calls these; nothing
// here knows Pulumi beyond the shapes of check/diff results.
import { validateConnection } from "../host";
import { Host } from "../host/host";
import { networkPaths } from "../naming";
import { applyNetwork, deleteNetwork, readNetwork } from "../orchestration/network";
import { NetworkError } from "../orchestration/errors";
import { observe } from "../orchestration/probe";
import { buildNetworkSpec, NetworkInputs, NetworkSpec } from "../model/network";
import { ObservedNetwork } from "../observe/observed";
import { toLibvirtXml } from "../libvirt/export";
import { renderDnsmasqConf, renderHostsFile, needsDnsmasq } from "../render/dnsmasq";
import { renderNftables } from "../render/nftables";
import { iptablesSaveText, renderIptablesState } from "../render/iptables";
import { firewallSummary } from "../plan/firewall";
import { overlaps } from "../plan/network";
import { containsUnknown, isUnknown, parseStrictCidr, PropertyError } from "../model/validation";
import { connectTo, resolveConnection } from "./connection";
import { changedKeys, checked, keepHidden, pick, Props, required, stackOf } from "./props";
import { NETWORK_INPUT_KEYS } from "../model/inputs";
import { modeUsesExistingBridge } from "../model/modes";

function networkInputs(props: Props): NetworkInputs {
  return pick(NETWORK_INPUT_KEYS, props);
}

/** Host artifacts, as `preview --diff` should show them. Absent while inputs are unknown. */
export function renderedArtifacts(spec: NetworkSpec): Props {
  const r: Props = {};
  // "auto" shows the nftables ruleset (its choice wherever nft is installed).
  if (spec.firewallBackend === "iptables") {
    const ipt = renderIptablesState(spec);
    const v4 = iptablesSaveText(ipt.ipv4);
    const v6 = iptablesSaveText(ipt.ipv6);
    if (v4) r.iptables = v4;
    if (v6) r.ip6tables = v6;
  } else {
    const nft = renderNftables(spec);
    if (nft) r.nftables = nft;
  }
  if (needsDnsmasq(spec)) {
    r.dnsmasqConf = renderDnsmasqConf(spec, networkPaths(spec.name));
    r.dnsmasqHosts = renderHostsFile(spec);
  }
  return r;
}

export function check(_olds: Props, news: Props): { inputs: Props; failures: PropertyError[] } {
  const failures: PropertyError[] = [];
  const conn = resolveConnection(news.connection, news.__credentials);
  const connResult = validateConnection(conn);
  failures.push(...connResult.errors.map((e: PropertyError) => ({ property: e.property, reason: e.reason })));
  const result = buildNetworkSpec(networkInputs(news), news.name, hostOf(conn));
  failures.push(...result.errors);
  if (result.spec) failures.push(...siblingOverlaps(result.spec, conn, news.__siblings));
  return checked(news, failures, result.spec, renderedArtifacts);
}

/** A subnet another network of the same program has on the same host: refused at check (preview). */
function siblingOverlaps(spec: NetworkSpec, conn: { host: string; port?: number }, siblings: unknown) {
  const failures: PropertyError[] = [];
  if (!Array.isArray(siblings)) return failures;
  for (const s of siblings as Props[]) {
    if (!s || typeof s !== "object" || containsUnknown(s) || s.name === spec.name) continue;
    const other = resolveConnection(s.connection);
    if (hostOf(other) !== hostOf(conn)) continue;
    for (const [mine, theirs, property] of [
      [spec.ipv4?.cidr, s.cidr, "ipv4.cidr"],
      [spec.ipv6?.cidr, s.ipv6Cidr, "ipv6.cidr"],
    ] as const) {
      if (!mine || typeof theirs !== "string" || !parseStrictCidr(theirs) || !overlaps(mine, theirs))
        continue;
      failures.push({
        property,
        reason: `${mine} overlaps ${theirs} of VirtualNetwork "${s.name}", declared in this program for the same host ${hostOf(conn)}`,
      });
    }
  }
  return failures;
}

function specOf(props: Props): NetworkSpec {
  return required(
    buildNetworkSpec(networkInputs(props), props.name, hostOf(resolveConnection(props.connection))),
  );
}

/** The host as a network's default bridge MAC tells hosts apart: "<host>:<port>". */
function hostOf(c: { host: string; port?: number }): string {
  return `${c.host}:${c.port ?? 22}`;
}

function sameTarget(a: Props | undefined, b: Props | undefined): boolean {
  const ra = resolveConnection(a);
  const rb = resolveConnection(b);
  return ra.host === rb.host && (ra.port ?? 22) === (rb.port ?? 22);
}

export function networkId(props: Props, spec: NetworkSpec): string {
  const c = resolveConnection(props.connection);
  return `${c.host}:${c.port ?? 22}/${spec.name}`;
}

export function diff(_id: string, olds: Props, news: Props) {
  const replaces: string[] = [];
  const changed = changedKeys([...NETWORK_INPUT_KEYS, "connection", "__credentials", "rendered"], olds, news);
  if (containsUnknown(news.connection) || !sameTarget(olds.connection, news.connection))
    replaces.push("connection");
  if (isUnknown(news.name) || (news.name ?? olds.name) !== olds.name) replaces.push("name");
  const newBridge = containsUnknown(news.bridge) || isUnknown(news.name) ? undefined : tryBridgeName(news);
  if (newBridge === undefined ? containsUnknown(news.bridge) : newBridge !== olds.bridgeName)
    replaces.push("bridge");
  const drifted = Array.isArray(olds.drift) && olds.drift.length > 0;
  return {
    changes: changed.length > 0 || drifted,
    replaces,
    // Same host: the replacement would collide on bridge name or subnet, so the old one goes first.
    deleteBeforeReplace: replaces.length > 0 && !replaces.includes("connection"),
  };
}

function tryBridgeName(props: Props): string | undefined {
  return buildNetworkSpec(networkInputs(props), props.name).spec?.bridge.name;
}

/** The network as libvirt XML, with the ranges and routes the host records for it. */
function libvirtXmlOf(spec: NetworkSpec, observed: ObservedNetwork): string {
  const routes = observed.route.records
    .filter((r) => r.device === spec.bridge.name)
    .map((r) => ({ destination: r.destination, gateway: r.gateway, metric: r.metric }));
  return toLibvirtXml(spec, observed.ranges, routes);
}

function outputsOf(
  inputs: Props,
  spec: NetworkSpec,
  host: Host,
  warnings: string[],
  drift: string[],
  observed: ObservedNetwork,
): Props {
  const outs: Props = { ...inputs };
  delete outs.__provider;
  outs.rendered = renderedArtifacts(spec);
  outs.libvirtXml = libvirtXmlOf(spec, observed);
  outs.host = host.label;
  outs.bridgeName = spec.bridge.name;
  if (spec.ipv4) {
    outs.gatewayIp = spec.ipv4.gateway;
    outs.cidr = spec.ipv4.cidr;
    outs.prefixLength = spec.ipv4.prefixLength;
    outs.netmask = spec.ipv4.netmask;
  }
  if (spec.ipv6) {
    outs.ipv6Cidr = spec.ipv6.cidr;
    outs.ipv6Gateway = spec.ipv6.gateway;
    outs.ipv6PrefixLength = spec.ipv6.prefixLength;
  }
  const firewall = firewallSummary(spec, observed);
  outs.firewall = firewall;
  if (firewall.table) outs.firewallTable = firewall.table;
  outs.warnings = warnings;
  outs.drift = drift;
  return outs;
}

export async function create(inputs: Props, opts: { failAfter?: string } = {}) {
  const spec = specOf(inputs);
  const host = await connectTo(inputs);
  const result = await applyNetwork(host, spec, { failAfter: opts.failAfter, stack: stackOf(inputs) });
  return {
    id: networkId(inputs, spec),
    outs: outputsOf(inputs, spec, host, result.warnings, [], result.observed),
  };
}

export async function update(_id: string, _olds: Props, news: Props) {
  const spec = specOf(news);
  const host = await connectTo(news);
  const result = await applyNetwork(host, spec, { stack: stackOf(news) });
  return { outs: outputsOf(news, spec, host, result.warnings, [], result.observed) };
}

export async function remove(_id: string, props: Props): Promise<void> {
  const host = await connectTo(props);
  const name = props.name;
  await deleteNetwork(host, name, props.bridgeName, stackOf(props));
}

/** Reads the host. Import (`get`) with only an id rebuilds the inputs from what virtnet keeps on the host. */
export async function read(id: string, props: Props) {
  let inputs = networkInputs(props) as Props;
  let connection = props.connection;
  if (inputs.mode === undefined) {
    const m = /^(.*):(\d+)\/([^/]+)$/.exec(id);
    if (!m) throw new Error(`cannot import "${id}": expected an id like "<host>:<port>/<network name>"`);
    connection = {
      ...(connection ?? {}),
      host: connection?.host ?? m[1],
      port: connection?.port ?? Number(m[2]),
    };
    const host = await connectTo({ ...props, connection });
    const stored = await recordedSpec(host, m[3]);
    if (!stored)
      throw new NetworkError(
        host.label,
        m[3],
        "get",
        "no such network on this host: virtnet has no record of it (deleted by its own stack, or never made)",
      );
    inputs = specToInputs(stored);
  }
  const full: Props = { ...props, ...inputs, connection };
  const spec = specOf(full);
  const host = await connectTo(full);
  const status = await readNetwork(host, spec);
  if (!status.exists) return { id: "", props: {} };
  const outs = outputsOf(full, spec, host, status.warnings, status.drift, status.observed);
  // The same shape check returns, so a refresh alone never makes the next preview show a change.
  const newInputs: Props = { ...inputs, name: spec.name, connection, rendered: renderedArtifacts(spec) };
  keepHidden(newInputs, props, ["__credentials", "__siblings", "__stack"]);
  return { id, props: outs, inputs: newInputs };
}

async function recordedSpec(host: Host, name: string): Promise<NetworkSpec | undefined> {
  const observed = await observe(host, name, "");
  return observed.networks.find((n) => n.name === name)?.spec as NetworkSpec | undefined;
}

/** The inputs that rebuild a normalized spec exactly. */
export function specToInputs(spec: NetworkSpec): Props {
  if (modeUsesExistingBridge(spec.mode)) {
    const own: Props = { name: spec.name, mode: spec.mode, bridge: { name: spec.bridge.name } };
    if (spec.autostart === false) own.autostart = false;
    return own;
  }
  const inputs: Props = { name: spec.name, mode: spec.mode, bridge: { ...spec.bridge }, dns: spec.dns };
  if (spec.autostart === false) inputs.autostart = false;
  if (spec.firewallBackend) inputs.firewallBackend = spec.firewallBackend;
  if (spec.ipv4) inputs.ipv4 = { cidr: spec.ipv4.cidr, gateway: spec.ipv4.gateway };
  if (spec.ipv6) inputs.ipv6 = { cidr: spec.ipv6.cidr, gateway: spec.ipv6.gateway };
  if (spec.forwardDevice) inputs.forwardDevice = spec.forwardDevice;
  if (
    spec.nat.addressRange ||
    spec.nat.ipv6 ||
    spec.nat.portRange.start !== 1024 ||
    spec.nat.portRange.end !== 65535
  )
    inputs.nat = spec.nat;
  if (spec.domain) inputs.domain = spec.domain;
  if (spec.vlan) inputs.vlan = { id: spec.vlan.id, uplink: spec.vlan.uplink };
  if (spec.dnsmasqOptions) inputs.dnsmasqOptions = spec.dnsmasqOptions;
  if (spec.tftp) inputs.tftp = spec.tftp;
  if (spec.bootp) inputs.bootp = spec.bootp;
  return inputs;
}
