// A bridge's forwarding database and ports, as `bridge -j fdb show br`, `bridge -d -j link show` and
// `bridge -j vlan show` list them (ops/probe.ts FDB_SCRIPT), typed.
import { KernelPortVlan } from "./observed";
import { kernelVlans } from "./parse";

export interface FdbEntry {
  mac: string;
  /** The device the MAC is behind: a TAP, a veth, the uplink, or the bridge itself. */
  port: string;
  vlan?: number;
  /**
   * "learned": the bridge saw the MAC arrive on the port (it ages out); "static": an entry that does not age
   * (each port's own address, entries added as static); "self": in the port device's own address list.
   */
  kind: "learned" | "static" | "self";
}

export interface FdbPort {
  name: string;
  /** The port's STP state: "forwarding", "disabled" (no carrier, or down), "blocking", "listening", "learning". */
  state: string;
  vlans: KernelPortVlan[];
  isolated: boolean;
}

export interface Fdb {
  entries: FdbEntry[];
  ports: FdbPort[];
}

function sections(output: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const part of output.split(/^@@/m).slice(1)) {
    const nl = part.indexOf("\n");
    map.set(part.slice(0, nl < 0 ? undefined : nl), nl < 0 ? "" : part.slice(nl + 1));
  }
  return map;
}

function list(text: string | undefined): any[] {
  try {
    const v = JSON.parse((text ?? "").trim() || "[]");
    return Array.isArray(v) ? v : [];
  } catch {
    return [];
  }
}

function kindOf(e: any): FdbEntry["kind"] {
  if ((e.flags ?? []).includes("self")) return "self";
  return e.state === "permanent" || e.state === "static" ? "static" : "learned";
}

/** The FDB of `bridge` from FDB_SCRIPT's output. */
export function parseFdb(output: string, bridge: string): Fdb {
  const s = sections(output);
  const links = list(s.get("links")).filter((l) => l.master === bridge);
  const vlans = new Map<string, any[]>(list(s.get("vlans")).map((v) => [v.ifname, v.vlans ?? []]));
  const entries = list(s.get("fdb")).map((e) => {
    const entry: FdbEntry = { mac: e.mac, port: e.ifname, kind: kindOf(e) };
    if (typeof e.vlan === "number") entry.vlan = e.vlan;
    return entry;
  });
  const ports = links.map((l) => ({
    name: l.ifname,
    state: l.state ?? "unknown",
    vlans: kernelVlans(vlans.get(l.ifname) ?? []),
    isolated: l.isolated === true,
  }));
  return { entries, ports };
}
