// A network's DHCP leases, read from dnsmasq's lease file.
import { Host } from "../host/host";
import { networkPaths } from "../naming";
import { withinDeadline } from "./deadline";

export interface Lease {
  mac: string;
  ip: string;
  hostname?: string;
  /** Seconds since the epoch; 0 for an infinite lease. */
  expiry: number;
  clientId?: string;
}

/** Current leases, from dnsmasq's lease file (like `virsh net-dhcp-leases`). */
export async function readLeases(host: Host, networkName: string): Promise<Lease[]> {
  const file = host.readFile(networkPaths(networkName).leases);
  const text = (await withinDeadline(host, networkName, "read the leases", file)) ?? "";
  return text
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4 && /^\d+$/.test(f[0]))
    .map(([expiry, mac, ip, hostname, clientId]) => {
      const lease: Lease = { mac, ip, expiry: Number(expiry) };
      if (hostname && hostname !== "*") lease.hostname = hostname;
      if (clientId && clientId !== "*") lease.clientId = clientId;
      return lease;
    });
}
