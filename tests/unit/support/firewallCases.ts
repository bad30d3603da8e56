// The networks whose firewall every driver renders (golden files per driver).
import { NetworkInputs } from "../../../provider/model/network";

const ipv4 = { cidr: "10.50.1.0/24" };
const ipv6 = { cidr: "fd00:50:1::/64" };

export const firewallCases: Record<string, NetworkInputs> = {
  "nat-default": { mode: "nat", ipv4 },
  "nat-forward-device": { mode: "nat", ipv4, forwardDevice: "eth0" },
  "nat-address-range": {
    mode: "nat",
    ipv4,
    nat: {
      addressRange: { start: "198.19.0.50", end: "198.19.0.60" },
      portRange: { start: 2000, end: 3000 },
    },
  },
  "nat-single-address": {
    mode: "nat",
    ipv4,
    nat: { addressRange: { start: "198.19.0.50", end: "198.19.0.50" } },
  },
  "route-default": { mode: "route", ipv4 },
  "route-forward-device": { mode: "route", ipv4, forwardDevice: "eth0" },
  isolated: { mode: "isolated", ipv4 },
  "isolated-no-ip": { mode: "isolated" },
  "nat-dual-stack-routed-ipv6": { mode: "nat", ipv4, ipv6 },
  "nat-dual-stack-masquerade-ipv6": { mode: "nat", ipv4, ipv6, nat: { ipv6: true }, forwardDevice: "eth0" },
  "route-dual-stack": { mode: "route", ipv4, ipv6 },
  "route-ipv6-only": { mode: "route", ipv6 },
  // As libvirt: IPv6 routed, NAT66 only with nat.ipv6.
  "nat-ipv6-only": { mode: "nat", ipv6 },
  "nat-tftp": { mode: "nat", ipv4, tftp: { root: "/srv/tftp" } },
  "isolated-dual-stack": { mode: "isolated", ipv4, ipv6 },
};
