// StaticRoute and multi-host labs end to end, through the engine path on lab hosts.
import { expect } from "chai";
import * as path from "node:path";
import { VirtualNetwork, StaticRoute, StaticRouteArgs } from "../../sdk";
import { DeploymentError, findOp, findResource, TestStack } from "../engine/engine";
import { guestAdd, guestDel, guestDhcp, guestExec, hostExec, LabHost } from "../lab/lab";
import {
  captureOnHost,
  labHosts,
  privateKeyOf,
  projectDir,
  sh,
  snapshot,
  sshLogins,
  stackFor,
} from "./support";

async function kernelRoute(host: string, dest: string): Promise<string> {
  return (await sh(host, `ip ${dest.includes(":") ? "-6" : "-4"} route show ${dest} table main`)).trim();
}

function routeProgram(name: string, args: StaticRouteArgs) {
  return () => {
    const r = new StaticRoute(name, args);
    return { destination: r.destination };
  };
}

describe("StaticRoute and multi-host labs, through the engine path", function () {
  this.timeout(180_000);
  let hosts: LabHost[];

  before(async () => {
    hosts = await labHosts(3);
  });

  describe("examples/multi-host-lab on 3 hosts", () => {
    let stack: TestStack;
    const guests: string[] = [];
    before(() => {
      stack = new TestStack({
        cwd: projectDir(),
        config: {
          "multihost:hosts": JSON.stringify(
            hosts.map((h) => ({
              name: h.name,
              address: h.address,
              hostKey: h.hostKey,
              uplinkAddress: h.uplinkAddress,
            })),
          ),
          "multihost:privateKey": { secret: privateKeyOf(hosts[0]) },
          "multihost:subnetPrefix": "10.210",
        },
      });
    });
    after(async () => {
      for (const g of guests) await guestDel(g);
      const before = hosts.map((h) => sshLogins(h.name));
      await stack.destroy();
      // Destroy, too, uses one connection per host.
      expect(hosts.map((h, i) => sshLogins(h.name) - before[i])).to.deep.equal([1, 1, 1]);
    });

    it("deploys networks, ranges and routes on every host over one SSH connection per host", async () => {
      const before = hosts.map((h) => sshLogins(h.name));
      const r = await stack.up(path.resolve(__dirname, "../../examples/multi-host-lab/index.js"));
      expect(r.summary.create).to.equal(3 + 3 + 6);
      expect(hosts.map((h, i) => sshLogins(h.name) - before[i])).to.deep.equal([1, 1, 1]);
      expect(await kernelRoute("h1", "10.210.3.0/24")).to.match(/via 198\.19\.0\.13 dev eth0 proto 242/);
    });

    it("lets a guest on host 1 reach a guest on host 3 with its own address, and back", async () => {
      await guestAdd("mh1", "h1", "vn-lab");
      guests.push("mh1");
      await guestAdd("mh3", "h3", "vn-lab");
      guests.push("mh3");
      const g1 = await guestDhcp("mh1", { timeoutMs: 15000 });
      const g3 = await guestDhcp("mh3", { timeoutMs: 15000 });
      expect(g1.ip).to.match(/^10\.210\.1\./);
      expect(g3.ip).to.match(/^10\.210\.3\./);
      const seen = await captureOnHost("h3", `icmp and src host ${g1.ip}`, () =>
        guestExec("mh1", ["busybox", "ping", "-c", "1", "-W", "2", g3.ip]),
      );
      expect(seen).to.include(`${g1.ip} > ${g3.ip}`);
      expect((await guestExec("mh3", ["busybox", "ping", "-c", "1", "-W", "2", g1.ip])).code).to.equal(0);
    });
  });

  describe("ownership, drift and updates on one host", () => {
    let stack: TestStack;
    before(async () => {
      stack = stackFor(hosts[0]);
      await sh("h1", "ip route add 10.220.0.0/16 via 198.19.0.1");
    });
    after(async () => {
      await stack.destroy();
      await sh("h1", "ip route del 10.220.0.0/16");
    });

    it("refuses to take over a route that is not virtnet's, and changes nothing", async () => {
      const before = await snapshot("h1");
      const err: DeploymentError = await stack
        .up(routeProgram("theirs", { destination: "10.220.0.0/16", gateway: "198.19.0.1" }))
        .then(
          () => expect.fail("up should fail"),
          (e) => e,
        );
      expect(err.message).to.match(
        /a route to 10\.220\.0\.0\/16 \(metric 0\) already exists and is not virtnet's/,
      );
      expect(await snapshot("h1")).to.equal(before);
    });

    it("refuses a gateway that is not on a directly connected network", async () => {
      const err: DeploymentError = await stack
        .up(routeProgram("far", { destination: "10.221.0.0/16", gateway: "198.51.100.1" }))
        .then(
          () => expect.fail("up should fail"),
          (e) => e,
        );
      expect(err.message).to.match(/gateway 198\.51\.100\.1 is not on a directly connected network/);
    });

    it("refuses bad input at check, naming each property", async () => {
      const err: DeploymentError = await stack
        .up(routeProgram("bad", { destination: "10.222.1.0/16", gateway: "fd00::1", metric: -1 }))
        .then(
          () => expect.fail("up should fail"),
          (e) => e,
        );
      const props = findOp(err.result, "bad")!.failures!.map((f) => f.property);
      expect(props).to.have.members(["destination", "gateway", "metric"]);
    });

    it("creates, detects a deleted route on refresh, repairs it, and changes metric and gateway in place", async () => {
      const prog = (metric: number, gateway: string) =>
        routeProgram("mine", { destination: "10.222.0.0/16", gateway, metric });
      await stack.up(prog(100, "198.19.0.1"));
      expect(await kernelRoute("h1", "10.222.0.0/16")).to.match(
        /via 198\.19\.0\.1 dev eth0 proto 242 metric 100/,
      );

      await sh("h1", "ip route del 10.222.0.0/16 metric 100");
      await stack.refresh();
      expect(findResource(stack.state, "mine")!.outputs.drift).to.deep.equal([
        "route to 10.222.0.0/16 is missing from the kernel",
      ]);
      expect(findOp(await stack.up(prog(100, "198.19.0.1")), "mine")!.op).to.equal("update");
      expect(await kernelRoute("h1", "10.222.0.0/16")).to.match(/metric 100/);

      expect(findOp(await stack.up(prog(200, "198.19.0.12")), "mine")!.op).to.equal("update");
      expect(await kernelRoute("h1", "10.222.0.0/16")).to.equal(
        "10.222.0.0/16 via 198.19.0.12 dev eth0 proto 242 metric 200",
      );
    });

    it("deletes only its own route", async () => {
      await stack.destroy();
      expect(await kernelRoute("h1", "10.222.0.0/16")).to.equal("");
      expect(await kernelRoute("h1", "10.220.0.0/16")).to.equal("10.220.0.0/16 via 198.19.0.1 dev eth0");
    });
  });

  describe("IPv6 routes through the SDK", () => {
    // Route-mode IPv6 networks on h1 and h2, each host routing the other's subnet via its uplink address,
    // and on h1 a subnet behind a router guest, via the network's bridge.
    let stack: TestStack;
    const guests: string[] = [];
    const prog = () => () => {
      const conn = (h: LabHost) => ({ host: h.address, hostKey: h.hostKey, privateKey: privateKeyOf(h) });
      const [h1, h2] = hosts;
      const a = new VirtualNetwork("r6a", {
        connection: conn(h1),
        mode: "route",
        ipv6: { cidr: "fd00:a1::/64" },
      });
      const b = new VirtualNetwork("r6b", {
        connection: conn(h2),
        mode: "route",
        ipv6: { cidr: "fd00:a2::/64" },
      });
      new StaticRoute("to-b", {
        connection: conn(h1),
        destination: "fd00:a2::/64",
        gateway: h2.uplinkAddress6,
      });
      new StaticRoute("to-a", {
        connection: conn(h2),
        destination: "fd00:a1::/64",
        gateway: h1.uplinkAddress6,
      });
      new StaticRoute("behind", { network: a, destination: "fd00:b0::/48", gateway: "fd00:a1::fe" });
      return { a: a.bridgeName, b: b.bridgeName };
    };
    async function guest6(name: string, host: string, bridge: string, cidr: string, gateway: string) {
      await guestAdd(name, host, bridge);
      guests.push(name);
      const ip6 = (...args: string[]) => guestExec(name, ["ip", "-6", ...args]);
      expect((await ip6("addr", "add", cidr, "dev", "eth0", "nodad")).code).to.equal(0);
      expect((await ip6("route", "add", "default", "via", gateway)).code).to.equal(0);
    }
    const ping6 = async (guest: string, ip: string) =>
      (await guestExec(guest, ["busybox", "ping", "-6", "-c", "1", "-W", "2", ip])).code === 0;

    before(() => (stack = stackFor(hosts[0])));
    after(async () => {
      for (const g of guests) await guestDel(g);
      await stack.destroy();
      for (const h of ["h1", "h2"]) {
        expect(await sh(h, "ip -6 route show proto 242")).to.equal("");
        expect(await sh(h, "ls /var/lib/virtnet 2>/dev/null || true")).to.equal("");
      }
    });

    it("puts the routes in the kernel as planned; a second up, and a refresh after the first, find them in sync", async () => {
      const r = await stack.up(prog());
      expect(r.summary.create).to.equal(5);
      expect(await kernelRoute("h1", "fd00:a2::/64")).to.equal(
        `fd00:a2::/64 via ${hosts[1].uplinkAddress6} dev eth0 proto 242 metric 1024 pref medium`,
      );
      // "linkdown" until a guest is on the bridge.
      expect(await kernelRoute("h1", "fd00:b0::/48")).to.match(
        /^fd00:b0::\/48 via fd00:a1::fe dev vn-r6a proto 242 metric 1024 /,
      );
      expect(findResource(stack.state, "behind")!.outputs.effectiveMetric).to.equal(1024);
      expect((await stack.up(prog())).summary).to.deep.equal({ same: 5 });
      // The route via r6a shows in r6a's libvirtXml from the first refresh on (README: From and to libvirt).
      const updated = (await stack.refresh()).changes.filter((c) => c.op !== "same");
      expect(updated.map((c) => [c.urn.split("::").pop(), c.op, c.changedKeys])).to.deep.equal([
        ["r6a", "update", ["libvirtXml"]],
      ]);
      expect(findResource(stack.state, "r6a")!.outputs.libvirtXml).to.include('gateway="fd00:a1::fe"');
      const again = await stack.refresh();
      expect(again.changes.map((c) => c.op)).to.deep.equal(["same", "same", "same", "same", "same"]);
    });

    it("carries a guest's IPv6 traffic from host to host with its own address, and back", async () => {
      await guest6("r6g1", "h1", "vn-r6a", "fd00:a1::50/64", "fd00:a1::1");
      await guest6("r6g2", "h2", "vn-r6b", "fd00:a2::50/64", "fd00:a2::1");
      const seen = await captureOnHost("h2", "icmp6 and src host fd00:a1::50", () =>
        ping6("r6g1", "fd00:a2::50"),
      );
      expect(seen).to.include("fd00:a1::50 > fd00:a2::50");
      expect(await ping6("r6g2", "fd00:a1::50")).to.equal(true);
    });

    it("reaches a subnet behind a router guest via the network's bridge", async () => {
      await guest6("r6rt", "h1", "vn-r6a", "fd00:a1::fe/64", "fd00:a1::1");
      expect(
        (await guestExec("r6rt", ["ip", "-6", "addr", "add", "fd00:b0::1/128", "dev", "lo"])).code,
      ).to.equal(0);
      const r = await hostExec("h1", ["busybox", "ping", "-6", "-c", "1", "-W", "2", "fd00:b0::1"]);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      // The check can fail: an address the router guest does not have gets no answer.
      expect(
        (await hostExec("h1", ["busybox", "ping", "-6", "-c", "1", "-W", "1", "fd00:b0::2"])).code,
      ).to.not.equal(0);
    });
  });

  describe("a route via a network's bridge", () => {
    let stack: TestStack;
    const prog = (mtu: number) => () => {
      const net = new VirtualNetwork("rtnet", {
        mode: "route",
        ipv4: { cidr: "10.223.0.0/24" },
        bridge: { mtu },
      });
      new StaticRoute("behind", { network: net, destination: "10.224.0.0/16", gateway: "10.223.0.254" });
      return {};
    };
    before(() => (stack = stackFor(hosts[0])));
    after(async () => {
      await stack.destroy();
      expect(await sh("h1", "ls /var/lib/virtnet 2>/dev/null || true")).to.equal("");
    });

    it("goes via the bridge and survives the network's updates and repairs", async () => {
      await stack.up(prog(1500));
      expect(await kernelRoute("h1", "10.224.0.0/16")).to.match(/via 10\.223\.0\.254 dev vn-rtnet proto 242/);
      await stack.up(prog(1400));
      expect(await kernelRoute("h1", "10.224.0.0/16")).to.match(/dev vn-rtnet proto 242/);

      await sh("h1", "ip link del vn-rtnet"); // the kernel drops the route with the bridge
      expect(await kernelRoute("h1", "10.224.0.0/16")).to.equal("");
      await stack.refresh();
      await stack.up(prog(1400));
      expect(await kernelRoute("h1", "10.224.0.0/16")).to.match(/via 10\.223\.0\.254 dev vn-rtnet proto 242/);
    });
  });
});
