// What the probe would report for a host with nothing of virtnet on it: the base the planner tests change.
import { ObservedNetwork } from "../../../provider/observe/observed";

export function emptyObserved(over: Partial<ObservedNetwork> = {}): ObservedNetwork {
  return {
    generation: "",
    bridgeIpv4: [],
    foreignIpv4: [],
    forwardChainsWithDrop: [],
    ipForward: false,
    forwardMarker: false,
    ip6Forward: false,
    forward6Marker: false,
    bridgeIpv6: [],
    networks: [],
    ranges: [],
    route: { kernel: [], records: [], dirs: [] },
    restore: { systemd: false, unitEnabled: false, wantsDir: false },
    dirs: [],
    missing: [],
    ...over,
  };
}
