// Stretched segments (NetworkExtension) in the bench: what VXLAN costs guests in throughput (a more.ts row, on
// the 2-host lab), and how long one more member takes to join a segment (on the multi-host row's lab).
//
// - `vxlanThroughputRow`: iperf3 between a guest on h1 and one on h2, first on one network stretched from h1 to
//   h2 over VXLAN, then on two routed networks (one per host, a route to each other's subnet via the other's
//   uplink): the same hosts and underlay, the guests joined directly. Made through the provider's orchestration
//   over nsenter (no SSH, no Pulumi); one run each, the ratio of the two.
// - `addExtensionRow`: examples/stretched-lab through the engine path: a network spanning all hosts but the
//   last, then one `up` that adds the last one; that up's time.
import * as fs from "node:fs";
import * as path from "node:path";
import { Host } from "../../provider/host/host";
import { buildNetworkSpec } from "../../provider/model/network";
import { buildRouteSpec } from "../../provider/model/staticRoute";
import { joinSegment, leaveSegment } from "../../provider/orchestration/extension";
import { applyNetwork, deleteNetwork } from "../../provider/orchestration/network";
import { applyRoute, deleteRoute } from "../../provider/orchestration/route";
import { repoRoot } from "../engine/engine";
import { guestAdd, guestAddr, guestDel, guestExec, LabHost } from "../lab/lab";
import { nsenterHost } from "../support/countingHost";
import { stretchedLabConfig } from "../support/stretchedLab";
import { BenchApi } from "./more";
import { ratioStr, Row, secs } from "./report";

const IPERF_SECONDS = 3;

/** Gbit/s from `client` to `server` (an iperf3 server started in `server` for this one test). */
async function iperf(client: string, server: string, serverIp: string): Promise<number> {
  const s = await guestExec(server, ["iperf3", "-s", "-1", "-D"]);
  if (s.code !== 0) throw new Error(`iperf3 -s in ${server}: ${s.stderr}`);
  await new Promise((r) => setTimeout(r, 200));
  const r = await guestExec(client, ["iperf3", "-c", serverIp, "-t", String(IPERF_SECONDS), "-J"], {
    timeoutMs: (IPERF_SECONDS + 10) * 1000,
  });
  if (r.code !== 0) throw new Error(`iperf3 -c in ${client}: ${r.stderr || r.stdout.slice(0, 300)}`);
  return JSON.parse(r.stdout).end.sum_received.bits_per_second / 1e9;
}

function must<T>(r: { spec?: T; errors: unknown[] }, what: string): T {
  if (!r.spec) throw new Error(`${what}: ${JSON.stringify(r.errors)}`);
  return r.spec;
}

/** One network stretched from h1 to h2, then two routed networks; iperf3 guest to guest across each. */
export async function vxlanThroughputRow(h1: LabHost, h2: LabHost, guests: Set<string>): Promise<Row> {
  const [a, b] = [nsenterHost(h1.name), nsenterHost(h2.name)];
  const vx = must(buildNetworkSpec({ mode: "route", ipv4: { cidr: "10.140.0.0/24" } }, "bvx"), "bvx");
  const d1 = must(buildNetworkSpec({ mode: "route", ipv4: { cidr: "10.141.1.0/24" } }, "bdr"), "bdr h1");
  const d2 = must(buildNetworkSpec({ mode: "route", ipv4: { cidr: "10.141.2.0/24" } }, "bdr"), "bdr h2");
  const network = { id: `${h1.address}:22/bvx`, name: "bvx", bridge: vx.bridge.name };
  const hosts = { home: a as Host, self: b as Host, peer: async () => undefined };
  const ext = { name: "bvx-h2", network, localAddress: h2.uplinkAddress };
  const route = (name: string, dst: string, via: string) =>
    must(buildRouteSpec({ destination: dst, gateway: via }, name), name);
  const r1 = route("bdr-to-h2", "10.141.2.0/24", h2.uplinkAddress);
  const r2 = route("bdr-to-h1", "10.141.1.0/24", h1.uplinkAddress);
  const guest = async (g: string, host: LabHost, bridge: string, cidr: string, gw?: string) => {
    guests.add(g);
    await guestAdd(g, host.name, bridge);
    await guestAddr(g, cidr, gw);
  };
  try {
    await applyNetwork(a, vx);
    const joined = await joinSegment(ext, hosts);
    await Promise.all([applyNetwork(a, d1), applyNetwork(b, d2)]);
    await Promise.all([applyRoute(a, r1), applyRoute(b, r2)]);
    await guest("bvq1", h1, "vn-bvx", "10.140.0.11/24");
    await guest("bvq2", h2, "vn-bvx", "10.140.0.12/24");
    await guest("bdq1", h1, "vn-bdr", "10.141.1.11/24", "10.141.1.1");
    await guest("bdq2", h2, "vn-bdr", "10.141.2.12/24", "10.141.2.1");
    const vxlan = await iperf("bvq2", "bvq1", "10.140.0.11");
    const direct = await iperf("bdq2", "bdq1", "10.141.1.11");
    return {
      what: "VXLAN throughput",
      figure: `${vxlan.toFixed(2)} / ${direct.toFixed(2)} Gbit/s`,
      ratio: ratioStr(vxlan / direct),
      note: `iperf3 ${IPERF_SECONDS} s each, guest to guest h2->h1: one network stretched over VXLAN (MTU ${joined.segment.mtu}) / two routed networks with routes via the uplinks (MTU 1500), the same hosts and lab veths; both hosts share this machine's cores`,
    };
  } finally {
    for (const g of ["bvq1", "bvq2", "bdq1", "bdq2"]) await guestDel(g);
    await Promise.all([deleteRoute(a, r1.name), deleteRoute(b, r2.name)]);
    await leaveSegment(ext, hosts);
    await Promise.all([
      deleteNetwork(a, "bvx", "vn-bvx"),
      deleteNetwork(a, "bdr", "vn-bdr"),
      deleteNetwork(b, "bdr", "vn-bdr"),
    ]);
  }
}

const PROGRAM = () => path.join(repoRoot(), "dist/examples/stretched-lab/index.js");
const CIDR = "10.142.0.0/24";

/** A network on hosts[0] with extensions on the others but the last, then one `up` that adds the last. */
export async function addExtensionRow(b: BenchApi, hosts: LabHost[]): Promise<Row> {
  const key = fs.readFileSync(hosts[0].privateKeyPath, "utf8");
  const names = hosts.map((h) => h.name);
  const config = (hs: LabHost[]) => ({ config: stretchedLabConfig(hs, key, CIDR) });
  const s = b.stack();
  const build = await b.converge(`stretch ${hosts.length - 1}`, names, () =>
    s.up(PROGRAM(), config(hosts.slice(0, -1))),
  );
  const add = await b.converge("stretch +1", names, () => s.up(PROGRAM(), config(hosts)));
  const destroy = await b.converge("stretch destroy", names, () => s.destroy(config(hosts)));
  return {
    what: `add 1 NetworkExtension to a network on ${hosts.length - 1} hosts`,
    figure: secs(add.wallMs),
    fixed: secs(add.fixedMs),
    provider: secs(add.providerMs),
    note: `examples/stretched-lab, one \`up\`: the new member's host and all ${hosts.length - 1} others changed (an FDB entry and the filter each) and the ${hosts.length - 2} other extensions' states updated (their list of members' connections); the network with ${hosts.length - 2} extensions took ${secs(build.wallMs)}, destroy ${secs(destroy.wallMs)}`,
  };
}
