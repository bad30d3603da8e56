// IPv6 end to end: router advertisements (SLAAC), stateful DHCPv6, and the modes' IPv6 semantics, on lab hosts.
import { expect } from "chai";
import { DhcpRange, DhcpRangeArgs, VirtualNetwork, VirtualNetworkArgs } from "../../sdk";
import { findResource, TestStack } from "../engine/engine";
import { guestAdd, guestDel, guestExec, LabHost, labStatus, upstreamExec } from "../lab/lab";
import { captureUpstream, labHosts, nftChainsOf, stackFor } from "./support";

type DhcpRangeArgs6 = Omit<DhcpRangeArgs, "network">;

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

/** dhclient's octal-escaped string of a DUID in hex ("00:03:..."), as its lease file holds one. */
function dhclientDuid(duid: string): string {
  return duid
    .split(":")
    .map((b) => "\\" + parseInt(b, 16).toString(8).padStart(3, "0"))
    .join("");
}

/**
 * The address a DHCPv6 exchange (dhclient -6, one try) gets the guest: with `duid` the client uses that DUID (a
 * lease file's default-duid), with `fqdn` it sends that name (option 39). undefined when none came.
 */
async function dhcp6Address(
  guest: string,
  opts: { duid?: string; fqdn?: string; seconds?: number } = {},
): Promise<string | undefined> {
  const base = `/tmp/virtnet-e2e-${guest}`;
  const seed = opts.duid
    ? `printf 'default-duid "%s";\\n' '${dhclientDuid(opts.duid)}' > ${base}.leases; `
    : "";
  const conf = opts.fqdn
    ? `printf 'send fqdn.fqdn "%s";\\n' '${opts.fqdn}' > ${base}.conf; `
    : `: > ${base}.conf; `;
  const r = await guestExec(
    guest,
    [
      "sh",
      "-c",
      `rm -f ${base}.leases; ${seed}${conf}timeout ${opts.seconds ?? 20} dhclient -6 -1 -sf /bin/true -cf ${base}.conf -lf ${base}.leases -pf ${base}.pid eth0; cat ${base}.leases; kill $(cat ${base}.pid) 2>/dev/null; rm -f ${base}.leases ${base}.pid ${base}.conf`,
    ],
    { timeoutMs: 30000 },
  );
  return /iaaddr ([0-9a-f:]+)/.exec(r.stdout)?.[1];
}

function program(name: string, args: VirtualNetworkArgs, range6?: DhcpRangeArgs6) {
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

  async function deploy(name: string, args: VirtualNetworkArgs, range6?: DhcpRangeArgs6) {
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
    const addr = await dhcp6Address("v6d");
    expect(addr, "no DHCPv6 address").to.match(/^fd00:98::[0-9a-f]+$/);
    const last = parseInt(addr!.split(":").pop()!, 16);
    expect(last).to.be.within(0x100, 0x1ff);
  });

  it("DHCPv6 reservations: a client's DUID, or the name it sends, gets its reserved address; another gets the range", async () => {
    const duid = "00:03:00:01:52:54:00:99:00:05";
    const outs = await deploy(
      "v6e",
      { mode: "route", ipv4: { cidr: "10.99.0.0/24" }, ipv6: { cidr: "fd00:99::/64" } },
      {
        start: "fd00:99::100",
        end: "fd00:99::1ff",
        hosts: [
          { duid, hostname: "fixed6", ip: "fd00:99::5" },
          { hostname: "byname6", ip: "fd00:99::6" },
        ],
      },
    );
    await guest("v6e", outs.bridgeName);
    await linkLocalReady("v6e");
    expect(await dhcp6Address("v6e", { duid }), "the reserved DUID").to.equal("fd00:99::5");
    expect(
      await dhcp6Address("v6e", { duid: "00:03:00:01:52:54:00:99:00:06", fqdn: "byname6" }),
      "by name",
    ).to.equal("fd00:99::6");
    const other = await dhcp6Address("v6e", { duid: "00:03:00:01:52:54:00:99:00:07" });
    expect(parseInt(other!.split(":").pop()!, 16), "another DUID").to.be.within(0x100, 0x1ff);
  });

  it("static-only DHCPv6: only a reserved DUID gets an address", async () => {
    const duid = "00:03:00:01:52:54:00:9a:00:05";
    const outs = await deploy(
      "v6s",
      { mode: "route", ipv4: { cidr: "10.100.0.0/24" }, ipv6: { cidr: "fd00:9a::/64" } },
      { hosts: [{ duid, ip: "fd00:9a::5" }] },
    );
    await guest("v6s", outs.bridgeName);
    await linkLocalReady("v6s");
    expect(await dhcp6Address("v6s", { duid })).to.equal("fd00:9a::5");
    expect(
      await dhcp6Address("v6s", { duid: "00:03:00:01:52:54:00:9a:00:06", seconds: 8 }),
      "an unknown DUID",
    ).to.equal(undefined);
  });
});
