// forwardDevice and the NAT address and port pool with real traffic, on lab hosts with two uplinks: eth0 into
// the usual upstream (its server 198.51.100.1), eth1 into a second one (its server 198.51.100.2, routed via
// eth1). A network bound to eth1 reaches the second upstream as the pool (or as itself, routed), and nothing of
// it leaves by eth0. Both firewall backends.
import { expect } from "chai";
import { VirtualNetwork, VirtualNetworkArgs } from "../../sdk";
import { findResource, TestStack } from "../engine/engine";
import {
  guestAdd,
  guestAddr,
  guestDel,
  guestExec,
  hostExec,
  LabHost,
  labStatus,
  labUp,
  upstreamExec,
} from "../lab/lab";
import { BACKENDS, kernelRules, renderedRules } from "./firewallSupport";
import { captureUpstream, stackFor } from "./support";

const SERVER1 = "198.51.100.1";
const SERVER2 = "198.51.100.2";
const PORT = 9999;
const POOL = { start: "198.19.15.10", end: "198.19.15.12" };
const POOL_SUBNET = "198.19.15.0/24";
const PORTS = { start: 20000, end: 20099 };
const DATAGRAMS = 12;

/** Source address and port of each IPv4 UDP packet in tcpdump's output. */
function sources(capture: string): { address: string; port: number }[] {
  return [...capture.matchAll(/IP (\d+\.\d+\.\d+\.\d+)\.(\d+) > /g)].map((m) => ({
    address: m[1],
    port: Number(m[2]),
  }));
}

/** `n` UDP datagrams from the guest to `server`, each from a new socket (a new source port). */
async function datagrams(guest: string, server: string, n: number): Promise<void> {
  const r = await guestExec(guest, [
    "bash",
    "-c",
    `for i in $(seq ${n}); do echo "$i" > /dev/udp/${server}/${PORT}; done`,
  ]);
  expect(r.code, r.stderr).to.equal(0);
}

const ping = async (guest: string, ip: string) =>
  (await guestExec(guest, ["busybox", "ping", "-c", "1", "-W", "2", ip])).code === 0;

const lastOctet = (a: string) => Number(a.split(".")[3]);

describe("forwardDevice and the NAT pool, on hosts with two uplinks, through the engine path", function () {
  this.timeout(120_000);
  let h1: LabHost;

  before(async () => {
    await labUp({ hosts: 2, uplinks: 2 });
    h1 = labStatus().hosts[0];
    // The second upstream routes the pool back to h1 (the first has no route to it, nor to any guest).
    const r = await upstreamExec(["ip", "route", "replace", POOL_SUBNET, "via", h1.uplink2!.address], {}, 2);
    expect(r.code, r.stderr).to.equal(0);
  });

  /** Shows, for the guest, what reaches upstream 1 (by eth0): the first UDP packet to SERVER1 after the guest
   * sent its own is a marker the host sends itself, so none of the guest's got there. */
  async function nothingByEth0(guest: string): Promise<void> {
    const seen = await captureUpstream(
      `udp and dst host ${SERVER1} and dst port ${PORT}`,
      async () => {
        await datagrams(guest, SERVER1, 3);
        await hostExec("h1", ["bash", "-c", `echo marker > /dev/udp/${SERVER1}/${PORT}`]);
      },
      { iface: "br0" },
    );
    expect(sources(seen).map((s) => s.address)).to.deep.equal([h1.uplinkAddress]);
  }

  BACKENDS.forEach((b, i) =>
    describe(`firewall: ${b.label}`, () => {
      /** The /24 of the backend's network number `n`, as "a.b.c". */
      const subnet = (n: number) => `10.${156 + i}.${n}`;
      const stacks: TestStack[] = [];
      const guests: string[] = [];
      const deploy = async (name: string, args: VirtualNetworkArgs) => {
        const stack = stackFor(h1);
        stacks.push(stack);
        await stack.up(() => {
          new VirtualNetwork(name, {
            ...args,
            ...(b.firewallBackend && { firewallBackend: b.firewallBackend }),
          });
          return {};
        });
        const outs = findResource(stack.state, name)!.outputs;
        expect(outs.firewall.backend).to.equal(b.expected);
        expect(await kernelRules("h1", outs)).to.deep.equal(renderedRules(outs));
        return outs;
      };
      const guest = async (name: string, bridge: string, n: number) => {
        await guestAdd(name, "h1", bridge);
        guests.push(name);
        await guestAddr(name, `${subnet(n)}.50/24`, `${subnet(n)}.1`);
      };
      afterEach(async () => {
        while (guests.length) await guestDel(guests.pop()!);
        while (stacks.length) await stacks.pop()!.destroy();
      });

      it("nat by eth1 with an address and port pool: upstream 2 sees only pool addresses and ports; nothing leaves by eth0", async () => {
        const outs = await deploy(`pool${i}`, {
          mode: "nat",
          ipv4: { cidr: `${subnet(0)}.0/24` },
          forwardDevice: "eth1",
          nat: { addressRange: POOL, portRange: PORTS },
        });
        await guest(`pg${i}`, outs.bridgeName, 0);

        const seen = await captureUpstream(
          `udp and dst host ${SERVER2} and dst port ${PORT}`,
          () => datagrams(`pg${i}`, SERVER2, DATAGRAMS),
          {
            uplink: 2,
            iface: "br0",
            count: DATAGRAMS,
          },
        );
        const from = sources(seen);
        expect(from, seen).to.have.length(DATAGRAMS);
        for (const s of from) {
          expect(s.address.startsWith("198.19.15."), s.address).to.equal(true);
          expect(lastOctet(s.address), s.address).to.be.within(lastOctet(POOL.start), lastOctet(POOL.end));
          expect(s.port, `source port of ${s.address}`).to.be.within(PORTS.start, PORTS.end);
        }
        // Replies find their way back through the pool address.
        expect(await ping(`pg${i}`, SERVER2)).to.equal(true);

        expect(await ping(`pg${i}`, SERVER1), "the guest reached upstream 1").to.equal(false);
        await nothingByEth0(`pg${i}`);
      });

      it("route by eth1: upstream 2 sees the guest's own address; nothing leaves by eth0", async () => {
        const outs = await deploy(`rt${i}`, {
          mode: "route",
          ipv4: { cidr: `${subnet(1)}.0/24` },
          forwardDevice: "eth1",
        });
        await guest(`rg${i}`, outs.bridgeName, 1);
        const own = `${subnet(1)}.50`;
        const seen = await captureUpstream(
          `udp and dst host ${SERVER2} and dst port ${PORT}`,
          () => datagrams(`rg${i}`, SERVER2, 3),
          {
            uplink: 2,
            iface: "br0",
            count: 3,
          },
        );
        expect(sources(seen).map((s) => s.address)).to.deep.equal([own, own, own]);
        expect(await ping(`rg${i}`, SERVER1), "the guest reached upstream 1").to.equal(false);
        await nothingByEth0(`rg${i}`);
      });
    }),
  );
});
