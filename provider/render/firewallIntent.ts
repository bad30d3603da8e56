// What a network's firewall must do, said once and without any firewall's syntax. The drivers (nftables.ts,
// iptables.ts) turn this into their own rules; neither decides what is allowed.
import { modeHasNoFirewall, modeMasquerades, modeRoutesThroughFirewall } from "../model/modes";
import { NetworkSpec } from "../model/network";

export type IpFamily = "ipv4" | "ipv6";

/** A service on the host that guests use (input), or that the host answers guests on (output). */
export interface ServiceRule {
  /** Both tcp and udp, or udp alone. */
  protocols: ("tcp" | "udp")[];
  port: number;
  /** Where the service exists. A driver whose table covers both families may accept it on both. */
  families: IpFamily[];
  comment: string;
}

/** Forwarding through the bridge, in order: the first that matches decides. */
export type ForwardRule =
  | { kind: "guest-to-guest"; comment: string }
  /** Guests' traffic out of the network (through `uplink` when set). */
  | { kind: "guests-out"; family: IpFamily; subnet: string; comment: string }
  /** Traffic into the network: only replies to connections guests opened, or anything (routed). */
  | { kind: "into-guests"; family: IpFamily; subnet: string; repliesOnly: boolean; comment: string }
  | { kind: "reject-from-guests"; comment: string }
  | { kind: "reject-to-guests"; comment: string };

/** Source NAT for traffic leaving the network, in order. */
export type NatRule =
  /** Traffic from the subnet to `destination` keeps its source address. */
  | { kind: "keep-source"; family: IpFamily; subnet: string; destination: string; comment: string }
  /**
   * Traffic from the subnet to anywhere outside it gets the uplink's address (or one of `addresses`), with
   * its source port mapped into `ports` when `protocols` are given.
   */
  | {
      kind: "masquerade";
      family: IpFamily;
      subnet: string;
      protocols?: ("tcp" | "udp")[];
      ports?: { start: number; end: number };
      addresses?: { start: string; end: string };
    };

export interface FirewallIntent {
  bridge: string;
  /** nat/route only through this interface. */
  uplink?: string;
  /** Families the network has an address in (forwarding and NAT rules exist only for these). */
  families: IpFamily[];
  fromGuests: ServiceRule[];
  toGuests: ServiceRule[];
  forward: ForwardRule[];
  nat: NatRule[];
}

/** The firewall a network needs, or null when its mode wants none ("open"). */
export function firewallIntent(spec: NetworkSpec): FirewallIntent | null {
  if (modeHasNoFirewall(spec.mode)) return null;
  const both: IpFamily[] = ["ipv4", "ipv6"];
  const fromGuests: ServiceRule[] = [
    { protocols: ["tcp", "udp"], port: 53, families: both, comment: "DNS from guests" },
    { protocols: ["udp"], port: 67, families: ["ipv4"], comment: "DHCP from guests" },
  ];
  const toGuests: ServiceRule[] = [
    { protocols: ["udp"], port: 68, families: ["ipv4"], comment: "DHCP to guests" },
  ];
  if (spec.tftp)
    fromGuests.push({ protocols: ["udp"], port: 69, families: ["ipv4"], comment: "TFTP from guests" });
  if (spec.ipv6) {
    fromGuests.push({ protocols: ["udp"], port: 547, families: ["ipv6"], comment: "DHCPv6 from guests" });
    toGuests.push({ protocols: ["udp"], port: 546, families: ["ipv6"], comment: "DHCPv6 to guests" });
  }

  const forward: ForwardRule[] = [{ kind: "guest-to-guest", comment: "guest to guest" }];
  const forwards = modeRoutesThroughFirewall(spec.mode);
  // IPv4 follows the mode; IPv6 is routed in nat mode unless nat.ipv6 asks for masquerade, as in libvirt.
  const subnets: [IpFamily, string | undefined, boolean][] = [
    ["ipv4", spec.ipv4?.cidr, modeMasquerades(spec.mode)],
    ["ipv6", spec.ipv6?.cidr, modeMasquerades(spec.mode) && spec.nat.ipv6 === true],
  ];
  for (const [family, subnet, masquerade] of subnets) {
    if (!subnet || !forwards) continue;
    forward.push({ kind: "guests-out", family, subnet, comment: "guests out" });
    forward.push({
      kind: "into-guests",
      family,
      subnet,
      repliesOnly: masquerade,
      comment: masquerade ? "replies in" : "routed in",
    });
  }
  forward.push({ kind: "reject-from-guests", comment: "nothing else from guests" });
  forward.push({ kind: "reject-to-guests", comment: "nothing else to guests" });

  const intent: FirewallIntent = {
    bridge: spec.bridge.name,
    families: [...(spec.ipv4 ? ["ipv4" as const] : []), ...(spec.ipv6 ? ["ipv6" as const] : [])],
    fromGuests,
    toGuests,
    forward,
    nat: modeMasquerades(spec.mode) ? natIntent(spec) : [],
  };
  if (spec.forwardDevice) intent.uplink = spec.forwardDevice;
  return intent;
}

function natIntent(spec: NetworkSpec): NatRule[] {
  const rules: NatRule[] = [];
  if (spec.ipv4) {
    const subnet = spec.ipv4.cidr;
    const family = "ipv4";
    const addresses = spec.nat.addressRange;
    const keep = (destination: string, comment: string): NatRule => ({
      kind: "keep-source",
      family,
      subnet,
      destination,
      comment,
    });
    rules.push(
      keep("224.0.0.0/24", "local multicast stays"),
      keep("255.255.255.255", "broadcast stays"),
      {
        kind: "masquerade",
        family,
        subnet,
        protocols: ["tcp", "udp"],
        ports: spec.nat.portRange,
        ...(addresses ? { addresses } : {}),
      },
      { kind: "masquerade", family, subnet, ...(addresses ? { addresses } : {}) },
    );
  }
  if (spec.ipv6 && spec.nat.ipv6) {
    const subnet = spec.ipv6.cidr;
    rules.push(
      { kind: "keep-source", family: "ipv6", subnet, destination: "ff00::/8", comment: "multicast stays" },
      { kind: "masquerade", family: "ipv6", subnet },
    );
  }
  return rules;
}
