// A NetworkExtension: one more host joins a network's layer-2 segment over VXLAN. Its inputs, validated, and
// the two records virtnet keeps of a stretched segment: the member list on the network's own host, and on each
// extension host what that host was last applied with.
import {
  checkInteger,
  checkNoControlCharacters,
  checkSafeName,
  isUnknown,
  parseStrictIp,
  Problems,
  PropertyError,
} from "./validation";
import { MAX_VNI } from "../naming";
import type { ExtensionArgs, Unchecked } from "./inputs";

/** The network an extension joins, as the SDK copies it from the VirtualNetwork's outputs. */
export interface ExtendedNetwork {
  /** The VirtualNetwork's id, "<host>:<port>/<name>": the default VNI is derived from it. */
  id: string;
  name: string;
  bridge: string;
}

export interface ExtensionSpec {
  /** The extension's own name (the resource name): one per network and host. */
  name: string;
  network: ExtendedNetwork;
  localAddress?: string;
  vni?: number;
}

/** One member of a segment besides the network's host, as that host records it. */
export interface SegmentMember {
  extension: string;
  /** The member's connection label ("user@host:port"): how the other members' changes reach it. */
  host: string;
  /** Its underlay address: the VXLAN peer the other members send to and accept from. */
  address: string;
  /** The stack that declared the extension (as in observe/observed.ts's Recorded); absent in older records. */
  stack?: string;
}

/** The segment as the network's host records it (networkPaths(name).segment). */
export interface SegmentRecord {
  vni: number;
  port: number;
  mtu: number;
  /** The network's host's own underlay address. */
  local: string;
  members: SegmentMember[];
  /** The network's bridge is VLAN-aware: so is every member's, and the VXLAN devices carry every VLAN. */
  vlanFiltering?: true;
}

/** What an extension host was last applied with (naming.extensionPaths(network).record). */
export interface MemberRecord {
  network: string;
  extension: string;
  /** The network's host, as a connection label. */
  home: string;
  bridge: string;
  bridgeMac: string;
  vxlan: string;
  vni: number;
  port: number;
  mtu: number;
  local: string;
  /** Every other member's underlay address, the network's host first. */
  peers: string[];
  /** A VLAN-aware bridge, as the network's (SegmentRecord.vlanFiltering). */
  vlanFiltering?: true;
}

/** Underlay addresses of the whole segment: the network's host, then every extension. */
export function segmentAddresses(s: SegmentRecord): string[] {
  return [s.local, ...s.members.map((m) => m.address)];
}

/** `spec` is absent when there are errors, or while inputs are preview unknowns. */
export function buildExtensionSpec(
  raw: Unchecked<ExtensionArgs> & {
    name?: unknown;
    network?: Partial<Record<keyof ExtendedNetwork, unknown>>;
  },
  defaultName: string,
): { spec?: ExtensionSpec; errors: PropertyError[] } {
  const problems = new Problems();
  checkNoControlCharacters(raw, "", problems);
  if (!problems.ok) return { errors: problems.errors };
  const name = raw.name ?? defaultName;
  const n = raw.network ?? {};
  const values = [name, raw.localAddress, raw.vni, n.id, n.name, n.bridge];
  if (typeof name !== "string" || isUnknown(name)) problems.add("name", "must be a string");
  else checkSafeName(name, "name", problems, 64);
  if (raw.localAddress !== undefined && !isUnknown(raw.localAddress) && !parseStrictIp(raw.localAddress))
    problems.add("localAddress", `"${raw.localAddress}" is not an IPv4 or IPv6 address`);
  if (raw.vni !== undefined && !isUnknown(raw.vni)) checkInteger(raw.vni, "vni", problems, 1, MAX_VNI);
  if (n.id !== undefined && !isUnknown(n.id) && (typeof n.id !== "string" || !/^.+:\d+\/[^/]+$/.test(n.id)))
    problems.add("network.id", `"${n.id}" is not a VirtualNetwork id ("<host>:<port>/<name>")`);
  if (!problems.ok || values.some(isUnknown) || n.id === undefined) return { errors: problems.errors };
  const spec: ExtensionSpec = {
    name: name as string,
    network: { id: n.id as string, name: n.name as string, bridge: n.bridge as string },
  };
  if (raw.localAddress !== undefined) spec.localAddress = parseStrictIp(raw.localAddress)!.toString();
  if (raw.vni !== undefined) spec.vni = raw.vni;
  return { spec, errors: [] };
}
