// The forward modes, as libvirt defines them, and what each one means for the host: one place for each meaning.

export const MODES = ["nat", "route", "open", "isolated", "bridge"] as const;
export type Mode = (typeof MODES)[number];

/** Guests' traffic is forwarded by the host (forwarding turned on; a forward chain with policy drop stops it). */
export function modeForwards(mode: string): boolean {
  return mode === "nat" || mode === "route" || mode === "open";
}

/** Forwarded under virtnet's rules, out through the uplink (forwardDevice) and back: nat and route. */
export function modeRoutesThroughFirewall(mode: string): boolean {
  return mode === "nat" || mode === "route";
}

/** Guests' IPv4 leaves with the host's address (libvirt's <forward mode='nat'>). */
export function modeMasquerades(mode: string): boolean {
  return mode === "nat";
}

/** virtnet adds no firewall rules at all. */
export function modeHasNoFirewall(mode: string): boolean {
  return mode === "open" || mode === "bridge";
}

/**
 * The network is a bridge the host already has (libvirt's <forward mode='bridge'>): guests sit on the LAN
 * behind it; virtnet adds no address, firewall or dnsmasq, and never makes or deletes the bridge.
 */
export function modeUsesExistingBridge(mode: string): boolean {
  return mode === "bridge";
}

/** Guests get no default gateway (DHCP option 3 empty, IPv6 router lifetime 0). */
export function modeIsolated(mode: string): boolean {
  return mode === "isolated";
}
