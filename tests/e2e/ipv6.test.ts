// IPv6 end to end: router advertisements (SLAAC), stateful DHCPv6, and the modes' IPv6 semantics, on lab hosts.
import { expect } from "chai";
import { DhcpRange, VirtualNetwork, VirtualNetworkArgs } from "../../sdk";
import { findResource, TestStack } from "../engine/engine";
import { guestAdd, guestDel, guestExec, LabHost, labStatus, upstreamExec } from "../lab/lab";
import { captureUpstream, labHosts, nftChainsOf, stackFor } from "./support";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The guest's global IPv6 address from SLAAC, waiting for the router advertisement. */
async function slaacAddress(guest: string, prefix: string, timeoutMs = 10000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await guestExec(guest, ["ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global"]);
    const m = new RegExp(`inet6 (${prefix}[0-9a-f:]*)/64`).exec(r.stdout);
    if (m && !r.stdout.includes("tentative")) return m[1];
    await sleep(200);
  }
  throw new Error(`guest ${guest} got no SLAAC address in ${prefix}/64 within ${timeoutMs} ms`);
}

async function linkLocalReady(guest: string, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await guestExec(guest, ["ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"]);
    if (r.stdout.includes("fe80:") && !r.stdout.includes("tentative")) return;
    await sleep(200);
  }
  throw new Error(`guest ${guest}: link-local address not ready within ${timeoutMs} ms`);
}

async function ping6(guest: string, ip: string): Promise<boolean> {
  return (await guestExec(guest, ["busybox", "ping", "-6", "-c", "1", "-W", "2", ip])).code === 0;
}

function program(name: string, args: VirtualNetworkArgs, range6?: { start: string; end: string }) {
  return () => {
    const n = new VirtualNetwork(name, args);
    if (range6) new DhcpRange(`${name}-pool6`, { network: n, ...range6 });
    return { bridgeName: n.bridgeName, ipv6Gateway: n.ipv6Gateway };
  };
}

describe("IPv6 on a lab host, through the engine path", function () {
  this.timeout(120_000);
  let h1: LabHost;
  let server6: string;
  const guests: string[] = [];
  const stacks: TestStack[] = [];
  const routes: string[] = [];

  before(async () => {
    [h1] = await labHosts(2);
    server6 = labStatus().upstream.serverAddress6;
  });
  afterEach(async () => {
    while (guests.length) await guestDel(guests.pop()!);
    while (routes.length) await upstreamExec(["ip", "-6", "route", "del", routes.pop()!]);
    while (stacks.length) await stacks.pop()!.destroy();
  });

  async function deploy(name: string, args: VirtualNetworkArgs, range6?: { start: string; end: string }) {
    const stack = stackFor(h1);
    stacks.push(stack);
    await stack.up(program(name, args, range6));
    return findResource(stack.state, name)!.outputs;
  }

  async function guest(name: string, bridge: string) {
    await guestAdd(name, "h1", bridge);
    guests.push(name);
  }

  it("route mode, dual stack: SLAAC address, routed IPv6 egress with the guest's own address, inbound allowed", async () => {
    const outs = await deploy("v6r", {
      mode: "route",
      ipv4: { cidr: "10.95.0.0/24" },
      ipv6: { cidr: "fd00:95::/64" },
    });
    expect(outs.ipv6Gateway).to.equal("fd00:95::1");
    expect(await nftChainsOf("h1", outs.name)).to.equal(outs.rendered.nftables);
    await upstreamExec(["ip", "-6", "route", "replace", "fd00:95::/64", "via", h1.uplinkAddress6]);
    routes.push("fd00:95::/64");
    await guest("v6a", outs.bridgeName);
    const addr = await slaacAddress("v6a", "fd00:95:");
    expect(await ping6("v6a", "fd00:95::1")).to.equal(true);
    const seen = await captureUpstream(`icmp6 and dst host ${server6}`, () => ping6("v6a", server6));
    expect(seen).to.include(`${addr} > ${server6}`);
    expect((await upstreamExec(["busybox", "ping", "-6", "-c", "1", "-W", "2", addr])).code).to.equal(0);
  });

  it("isolated mode: SLAAC address but no default route, nothing forwarded", async () => {
    const outs = await deploy("v6i", { mode: "isolated", ipv6: { cidr: "fd00:96::/64" } });
    await guest("v6b", outs.bridgeName);
    await slaacAddress("v6b", "fd00:96:");
    expect(await ping6("v6b", "fd00:96::1")).to.equal(true);
    expect((await guestExec("v6b", ["ip", "-6", "route", "show", "default"])).stdout.trim()).to.equal("");
    await guestExec("v6b", ["ip", "-6", "route", "add", "default", "via", "fd00:96::1"]);
    expect(await ping6("v6b", server6)).to.equal(false);
  });

  it("nat mode with only an IPv6 subnet, as libvirt: IPv6 routed with the guest's own address", async () => {
    const outs = await deploy("v6o", { mode: "nat", ipv6: { cidr: "fd00:94::/64" } });
    expect(await nftChainsOf("h1", outs.name)).to.equal(outs.rendered.nftables);
    await upstreamExec(["ip", "-6", "route", "replace", "fd00:94::/64", "via", h1.uplinkAddress6]);
    routes.push("fd00:94::/64");
    await guest("v6o", outs.bridgeName);
    const addr = await slaacAddress("v6o", "fd00:94:");
    const seen = await captureUpstream(`icmp6 and dst host ${server6}`, () => ping6("v6o", server6));
    expect(seen).to.include(`${addr} > ${server6}`);
  });

  it("nat mode with nat.ipv6: IPv6 egress masqueraded behind the host's uplink address", async () => {
    const outs = await deploy("v6n", {
      mode: "nat",
      ipv4: { cidr: "10.97.0.0/24" },
      ipv6: { cidr: "fd00:97::/64" },
      nat: { ipv6: true },
    });
    expect(await nftChainsOf("h1", outs.name)).to.equal(outs.rendered.nftables);
    await guest("v6c", outs.bridgeName);
    await slaacAddress("v6c", "fd00:97:");
    const seen = await captureUpstream(`icmp6 and dst host ${server6}`, () => ping6("v6c", server6));
    expect(seen).to.include(`${h1.uplinkAddress6} > ${server6}`);
  });

  it("a DHCPv6 range hands out an address from the range", async () => {
    const outs = await deploy(
      "v6d",
      { mode: "route", ipv4: { cidr: "10.98.0.0/24" }, ipv6: { cidr: "fd00:98::/64" } },
      { start: "fd00:98::100", end: "fd00:98::1ff" },
    );
    await guest("v6d", outs.bridgeName);
    await linkLocalReady("v6d"); // a stateful range's RA carries the managed flag and no SLAAC prefix
    const lease = "/tmp/virtnet-e2e-v6d.leases";
    const r = await guestExec(
      "v6d",
      [
        "sh",
        "-c",
        `rm -f ${lease}; timeout 20 dhclient -6 -1 -sf /bin/true -lf ${lease} -pf /tmp/virtnet-e2e-v6d.pid eth0; cat ${lease}; kill $(cat /tmp/virtnet-e2e-v6d.pid) 2>/dev/null; rm -f ${lease} /tmp/virtnet-e2e-v6d.pid`,
      ],
      { timeoutMs: 30000 },
    );
    const m = /iaaddr (fd00:98::[0-9a-f]+)/.exec(r.stdout);
    expect(m, r.stdout + r.stderr).to.not.equal(null);
    const last = parseInt(m![1].split(":").pop()!, 16);
    expect(last).to.be.within(0x100, 0x1ff);
  });
});
