// A Port's inputs, validated and normalized into the TAP virtnet keeps on a host.
import { defaultGuestMac, defaultPortName, MAX_IFNAME } from "../naming";
import { PortArgs, Unchecked } from "./inputs";
import {
  checkInteger,
  checkNoControlCharacters,
  checkSafeName,
  checkUnicastMac,
  containsUnknown,
  isUnknown,
  Problems,
  PropertyError,
} from "./validation";

export type PortInputs = Unchecked<PortArgs>;

/** The network a Port is on, as the SDK copies it from the VirtualNetwork; fields are undefined while unknown. */
export interface PortNetworkFacts {
  name?: string;
  bridgeName?: string;
  /**
   * The network's bridge.vlanFiltering, when known; undefined too for a mode "bridge" network, whose bridge is
   * VLAN-aware as the host has it (its HostBridge's vlanFiltering): the Port's plan reads it from the host.
   */
  vlanFiltering?: boolean;
}

/**
 * A port's VLAN membership as the bridge keeps it: `untagged` is the PVID (untagged frames in, out untagged),
 * `tagged` the VLANs carried tagged. The kernel's default is { untagged: 1, tagged: [] }.
 */
export interface PortVlans {
  untagged?: number;
  tagged: number[];
}

export interface PortSpec {
  /** The TAP device. */
  name: string;
  network: string;
  bridge: string;
  /** The guest NIC's MAC (the TAP's own is tapMac of it). */
  macAddress: string;
  /** A user name or a uid (digits), allowed to open the TAP. */
  owner?: string;
  multiQueue: boolean;
  vlan?: PortVlans;
  isolated: boolean;
}

export const VLAN_MIN = 1;
export const VLAN_MAX = 4094;
/** The VLAN of a port with none set on a VLAN-aware bridge (the kernel's default_pvid). */
export const DEFAULT_PORT_VLANS: PortVlans = { untagged: 1, tagged: [] };

// Debian's useradd: a letter or '_' first, then letters, digits, '_', '-', an optional '$' at the end.
const USER_NAME = /^[a-z_][a-z0-9_-]{0,30}\$?$/;
const MAX_UID = 4294967294; // (uid_t)-1 means "no owner"

function checkVlans(raw: unknown, problems: Problems): PortVlans | undefined {
  const before = problems.errors.length;
  if (typeof raw === "number") {
    return checkInteger(raw, "vlan", problems, VLAN_MIN, VLAN_MAX)
      ? { untagged: raw, tagged: [] }
      : undefined;
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    problems.add("vlan", "must be a VLAN id (an access port) or { tagged: [...], untagged? } (a trunk)");
    return undefined;
  }
  const r = raw as { tagged?: unknown; untagged?: unknown };
  const tagged: number[] = [];
  if (r.tagged !== undefined) {
    if (!Array.isArray(r.tagged)) problems.add("vlan.tagged", "must be a list of VLAN ids");
    else
      r.tagged.forEach((v, i) => {
        if (!checkInteger(v, `vlan.tagged[${i}]`, problems, VLAN_MIN, VLAN_MAX)) return;
        if (tagged.includes(v)) problems.add(`vlan.tagged[${i}]`, `VLAN ${v} is listed twice`);
        else tagged.push(v);
      });
  }
  let untagged: number | undefined;
  if (r.untagged !== undefined && checkInteger(r.untagged, "vlan.untagged", problems, VLAN_MIN, VLAN_MAX)) {
    untagged = r.untagged as number;
    if (tagged.includes(untagged))
      problems.add("vlan.untagged", `VLAN ${untagged} is also in vlan.tagged: a VLAN is tagged or untagged`);
  }
  if (r.tagged === undefined && r.untagged === undefined)
    problems.add("vlan", "a trunk needs vlan.tagged, vlan.untagged or both");
  if (problems.errors.length !== before) return undefined;
  const vlans: PortVlans = { tagged: tagged.sort((a, b) => a - b) };
  if (untagged !== undefined) vlans.untagged = untagged;
  return vlans;
}

function checkOwner(raw: unknown, problems: Problems): string | undefined {
  if (typeof raw === "number") {
    return checkInteger(raw, "owner", problems, 0, MAX_UID) ? String(raw) : undefined;
  }
  if (typeof raw !== "string" || !(USER_NAME.test(raw) || /^\d{1,10}$/.test(raw))) {
    problems.add("owner", `"${raw}" is not a user name or uid`);
    return undefined;
  }
  if (/^\d+$/.test(raw) && Number(raw) > MAX_UID) {
    problems.add("owner", `must be a uid from 0 to ${MAX_UID}`);
    return undefined;
  }
  return raw;
}

function checkBoolean(raw: unknown, path: string, problems: Problems): boolean {
  if (raw === undefined) return false;
  if (typeof raw !== "boolean") {
    problems.add(path, "must be true or false");
    return false;
  }
  return raw;
}

/**
 * Validates a Port's inputs. `resourceName` gives the default TAP name, `host` (the connection's) the default
 * guest MAC. Preview unknowns give no spec and no error.
 */
export function buildPortSpec(
  raw: PortInputs,
  resourceName: string,
  network: PortNetworkFacts,
  host: string,
): { spec?: PortSpec; errors: PropertyError[] } {
  const problems = new Problems();
  checkNoControlCharacters(raw, "", problems);
  if (!problems.ok) return { errors: problems.errors };
  if (raw.name !== undefined && !isUnknown(raw.name)) {
    if (typeof raw.name !== "string") problems.add("name", "must be a string");
    else checkSafeName(raw.name, "name", problems, MAX_IFNAME);
  }
  let macAddress: string | undefined;
  if (raw.macAddress !== undefined && !isUnknown(raw.macAddress)) {
    if (typeof raw.macAddress !== "string") problems.add("macAddress", "must be a string");
    else {
      const before = problems.errors.length;
      checkUnicastMac(raw.macAddress, "macAddress", problems);
      if (problems.errors.length === before) macAddress = raw.macAddress.toLowerCase();
    }
  }
  const owner = raw.owner === undefined || isUnknown(raw.owner) ? undefined : checkOwner(raw.owner, problems);
  const multiQueue = checkBoolean(raw.multiQueue, "multiQueue", problems);
  const isolated = checkBoolean(raw.isolated, "isolated", problems);
  const vlan =
    raw.vlan === undefined || containsUnknown(raw.vlan) ? undefined : checkVlans(raw.vlan, problems);
  if (raw.vlan !== undefined && network.vlanFiltering === false)
    problems.add(
      "vlan",
      `network "${network.name}" is not VLAN-aware: set bridge.vlanFiltering on it to give its ports VLANs`,
    );
  if (!problems.ok) return { errors: problems.errors };
  const unknowns = [raw.name, raw.macAddress, raw.owner, raw.vlan, network.name, network.bridgeName, host];
  if (unknowns.some(containsUnknown) || !network.name || !network.bridgeName) return { errors: [] };
  const name = (raw.name as string | undefined) ?? defaultPortName(resourceName);
  const spec: PortSpec = {
    name,
    network: network.name,
    bridge: network.bridgeName,
    macAddress: macAddress ?? defaultGuestMac(host, network.name, name),
    multiQueue,
    isolated,
  };
  if (owner !== undefined) spec.owner = owner;
  if (vlan) spec.vlan = vlan;
  return { spec, errors: [] };
}
