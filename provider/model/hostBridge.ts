// A HostBridge's inputs, validated and normalized: the bridge that takes over a host's uplink.
import { HostBridgeArgs, Unchecked } from "./inputs";
import { MAX_IFNAME } from "../naming";
import {
  checkInteger,
  checkSafeName,
  containsUnknown,
  isUnknown,
  Problems,
  PropertyError,
} from "./validation";

export interface HostBridgeSpec {
  name: string;
  uplink: string;
  stp: boolean;
  /** Seconds. */
  forwardDelay: number;
  mtu?: number;
  /** A VLAN-aware bridge; its uplink a trunk of every VLAN. */
  vlanFiltering?: true;
  /** Seconds. */
  confirmTimeout: number;
}

export const DEFAULT_CONFIRM_TIMEOUT = 30;
export const CONFIRM_TIMEOUT_RANGE = { min: 5, max: 600 };

export function buildHostBridgeSpec(
  raw: Unchecked<HostBridgeArgs>,
  defaultName: string,
): { spec?: HostBridgeSpec; errors: PropertyError[] } {
  const problems = new Problems();
  const known = (v: unknown) => v !== undefined && !isUnknown(v);
  const name = raw.name ?? defaultName;
  const ifname = (v: unknown, path: string) => {
    if (typeof v !== "string") problems.add(path, "must be a string");
    else checkSafeName(v, path, problems, MAX_IFNAME);
  };
  if (known(name)) ifname(name, "name");
  if (raw.uplink === undefined) problems.add("uplink", 'is required: the interface to enslave, e.g. "eth0"');
  else if (known(raw.uplink)) {
    ifname(raw.uplink, "uplink");
    if (raw.uplink === "lo") problems.add("uplink", "is the loopback: it cannot be bridged");
    if (raw.uplink === name) problems.add("uplink", `is the bridge's own name "${name}"`);
  }
  let stp = false;
  if (known(raw.stp)) {
    if (typeof raw.stp !== "boolean") problems.add("stp", "must be true or false");
    else stp = raw.stp;
  }
  const minDelay = stp ? 2 : 0;
  let forwardDelay = minDelay;
  if (known(raw.forwardDelay) && checkInteger(raw.forwardDelay, "forwardDelay", problems, minDelay, 30))
    forwardDelay = raw.forwardDelay as number;
  let mtu: number | undefined;
  if (known(raw.mtu) && checkInteger(raw.mtu, "mtu", problems, 68, 65535)) mtu = raw.mtu as number;
  let vlanFiltering = false;
  if (known(raw.vlanFiltering)) {
    if (typeof raw.vlanFiltering !== "boolean") problems.add("vlanFiltering", "must be true or false");
    else vlanFiltering = raw.vlanFiltering;
  }
  let confirmTimeout = DEFAULT_CONFIRM_TIMEOUT;
  const { min, max } = CONFIRM_TIMEOUT_RANGE;
  if (known(raw.confirmTimeout) && checkInteger(raw.confirmTimeout, "confirmTimeout", problems, min, max))
    confirmTimeout = raw.confirmTimeout as number;
  if (!problems.ok) return { errors: problems.errors };
  if (containsUnknown(raw) || !known(name)) return { errors: [] };
  const spec: HostBridgeSpec = {
    name: name as string,
    uplink: raw.uplink as string,
    stp,
    forwardDelay,
    confirmTimeout,
  };
  if (mtu !== undefined) spec.mtu = mtu;
  if (vlanFiltering) spec.vlanFiltering = true;
  return { spec, errors: [] };
}
