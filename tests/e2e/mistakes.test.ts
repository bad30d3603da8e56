// The mistakes users make, through the engine path on lab hosts: each ends with a clear error, never a hang.
import { expect } from "chai";
import { DhcpRange, NetworkExtension, Port, StaticRoute, VirtualNetwork } from "../../sdk";
import { DeploymentError } from "../engine/engine";
import { LabHost } from "../lab/lab";
import { hostExec } from "../lab/lab";
import { connectionFor, labHosts, sh, snapshot, stackFor } from "./support";

/** The run's error, or a failure of the test when it succeeds or has not ended after `ms`. */
async function failureOf(run: Promise<unknown>, ms = 30_000): Promise<DeploymentError> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${ms / 1000} s: a hang`)), ms);
  });
  try {
    await Promise.race([run, late]);
  } catch (e) {
    if (e instanceof DeploymentError) return e;
    throw e;
  } finally {
    clearTimeout(timer);
  }
  throw new Error("expected the run to fail");
}

describe("mistakes users make, on a lab host through the engine path", function () {
  this.timeout(120_000);
  let h1: LabHost;
  let h2: LabHost;

  before(async () => {
    [h1, h2] = await labHosts(2);
  });

  it("a range on a network another stack destroyed: the next up ends with an error naming host, network and what is missing", async () => {
    // One stack name for both: virtnet tells them apart by it, so A's destroy is not refused (see below).
    const a = stackFor(h1);
    const b = stackFor(h1);
    const programB = () => {
      const n = VirtualNetwork.get("shared", `${h1.address}:22/od`);
      const r = new DhcpRange("r", { network: n, start: "10.73.0.100", end: "10.73.0.150" });
      return { size: r.size, bridge: n.bridgeName };
    };
    try {
      await a.up(() => {
        new VirtualNetwork("od", { mode: "nat", ipv4: { cidr: "10.73.0.0/24" } });
      });
      await b.up(programB);
      await a.destroy();
      for (const round of ["up", "up after a refresh"]) {
        if (round !== "up") await b.refresh();
        const e = await failureOf(b.up(programB));
        expect(e.message, round).to.include(`host root@${h1.address}:22, network "od": get: no such network`);
      }
    } finally {
      await a.destroy();
      await b.destroy();
    }
  });

  it("an operation that stalls on the host (its lock held) fails at connection.operationTimeoutMs, naming host and network", async () => {
    const before = await snapshot("h1");
    const stack = stackFor(h1);
    const program = (operationTimeoutMs?: number) => () => {
      new VirtualNetwork("stall", {
        connection: {
          host: h1.address,
          hostKey: h1.hostKey,
          ...(operationTimeoutMs ? { operationTimeoutMs } : {}),
        },
        mode: "isolated",
        ipv4: { cidr: "10.74.0.0/24" },
      });
    };
    // Another process holds virtnet's host lock: the round script waits for it (up to 60 s on its own).
    const holder = hostExec("h1", ["flock", "/run", "sh", "-c", "echo $$ > /tmp/vn-hold.pid; exec sleep 45"]);
    try {
      for (let i = 0; i < 50 && !(await sh("h1", "cat /tmp/vn-hold.pid 2>/dev/null || true")).trim(); i++)
        await new Promise((r) => setTimeout(r, 100));
      const e = await failureOf(stack.up(program(3000)));
      // The operation's own timeout fired (by its error), not the script's 60 s wait for the lock.
      expect(e.message).to.include(
        `host root@${h1.address}:22, network "stall": apply: did not finish within 3 s`,
      );
    } finally {
      await sh("h1", "kill $(cat /tmp/vn-hold.pid); rm -f /tmp/vn-hold.pid");
      await holder;
      // The script that waited may still have run once the lock was free: converge, then remove.
      await stack.up(program());
      await stack.destroy();
    }
    expect(await snapshot("h1")).to.equal(before);
  });

  it("the same MAC or IP reserved in two DhcpRanges of one network: refused at create naming both, dnsmasq unchanged", async () => {
    const stack = stackFor(h1);
    const reserve = (mac: string, ip: string) => [{ mac, ip, hostname: "twice" }];
    const program = (second?: { mac: string; ip: string }) => () => {
      const n = new VirtualNetwork("dup", { mode: "isolated", ipv4: { cidr: "10.75.0.0/24" } });
      new DhcpRange("first", {
        network: n,
        start: "10.75.0.100",
        end: "10.75.0.150",
        hosts: reserve("52:54:00:aa:00:01", "10.75.0.10"),
      });
      if (second)
        new DhcpRange("second", {
          network: n,
          start: "10.75.0.160",
          end: "10.75.0.200",
          hosts: reserve(second.mac, second.ip),
        });
    };
    try {
      await stack.up(program());
      const before = await snapshot("h1");
      for (const second of [
        { mac: "52:54:00:AA:00:01", ip: "10.75.0.11" },
        { mac: "52:54:00:aa:00:02", ip: "10.75.0.10" },
      ]) {
        const e = await failureOf(stack.up(program(second)));
        expect(e.message).to.include('network "dup": check host: hosts[0]:');
        expect(e.message).to.include(
          'already reserved by DhcpRange "first" of this network; DhcpRange "second"',
        );
        expect(await snapshot("h1")).to.equal(before);
      }
    } finally {
      await stack.destroy();
    }
  });

  it("the same DUID reserved in two IPv6 DhcpRanges of one network (in another spelling): refused at create naming both", async () => {
    const stack = stackFor(h1);
    const program = (secondDuid?: string) => () => {
      const n = new VirtualNetwork("dup6", {
        mode: "isolated",
        ipv4: { cidr: "10.76.0.0/24" },
        ipv6: { cidr: "fd00:76::/64" },
      });
      new DhcpRange("first6", {
        network: n,
        start: "fd00:76::100",
        end: "fd00:76::150",
        hosts: [{ duid: "00:03:00:01:52:54:00:76:00:01", ip: "fd00:76::10" }],
      });
      if (secondDuid)
        new DhcpRange("second6", {
          network: n,
          start: "fd00:76::160",
          end: "fd00:76::200",
          hosts: [{ duid: secondDuid, ip: "fd00:76::11" }],
        });
    };
    try {
      await stack.up(program());
      const before = await snapshot("h1");
      const e = await failureOf(stack.up(program("0:3:0:1:52:54:0:76:0:1")));
      expect(e.message).to.include(
        'hosts[0]: DUID 00:03:00:01:52:54:00:76:00:01 is already reserved by DhcpRange "first6" of this network; DhcpRange "second6"',
      );
      expect(await snapshot("h1")).to.equal(before);
    } finally {
      await stack.destroy();
    }
  });

  it("a forwardDevice the host does not have: refused at create before any change", async () => {
    const stack = stackFor(h1);
    const before = await snapshot("h1");
    try {
      const e = await failureOf(
        stack.up(() => {
          new VirtualNetwork("nofwd", { mode: "nat", ipv4: { cidr: "10.76.0.0/24" }, forwardDevice: "eth9" });
        }),
      );
      expect(e.message).to.include(
        'network "nofwd": check host: forwardDevice eth9 does not exist on this host',
      );
      expect(e.message).to.include("eth0");
      expect(await snapshot("h1")).to.equal(before);
    } finally {
      await stack.destroy();
    }
  });

  it("destroying a network another stack's range, route, Port and extension still use: refused naming each and that stack, hosts unchanged; once they are gone it goes", async () => {
    const baseline = await snapshot("h1");
    const baseline2 = await snapshot("h2");
    const a = stackFor(h1, {}, "a");
    const b = stackFor(h1, {}, "b");
    const programA = (bridge?: string) => () => {
      new VirtualNetwork("shr", {
        mode: "nat",
        ipv4: { cidr: "10.77.0.0/24" },
        ...(bridge ? { bridge: { name: bridge } } : {}),
      });
    };
    const programB = () => {
      const n = VirtualNetwork.get("shared", `${h1.address}:22/shr`);
      new DhcpRange("b-pool", { network: n, start: "10.77.0.100", end: "10.77.0.150" });
      new StaticRoute("b-route", { network: n, destination: "10.177.0.0/16", gateway: "10.77.0.254" });
      new Port("b-tap", { network: n, name: "vn-btap" });
      new NetworkExtension("b-ext", {
        network: n,
        connection: connectionFor(h2),
        localAddress: h2.uplinkAddress,
      });
    };
    try {
      await a.up(programA());
      await b.up(programB);
      const before = await snapshot("h1");
      const before2 = await snapshot("h2");
      const scope = `host root@${h1.address}:22, network "shr": check host: network "shr" is still used by another stack:`;
      for (const [what, run] of [
        ["destroy", () => a.destroy()],
        ["replacement (a new bridge name)", () => a.up(programA("vn-shr2"))],
      ] as const) {
        const e = await failureOf(run());
        expect(e.message, what).to.include(scope);
        for (const named of [
          'DhcpRange "b-pool" of stack "project/b"',
          'StaticRoute "b-route" of stack "project/b"',
          'Port "vn-btap" of stack "project/b"',
          'NetworkExtension "b-ext" of stack "project/b"',
          "destroy them in their stack (or move them to another network) first",
        ])
          expect(e.message, what).to.include(named);
        expect(await snapshot("h1"), what).to.equal(before);
        expect(await snapshot("h2"), what).to.equal(before2);
      }
      await b.destroy();
      await a.destroy();
      expect(await snapshot("h1")).to.equal(baseline);
      expect(await snapshot("h2")).to.equal(baseline2);
    } finally {
      await b.destroy();
      await a.destroy();
    }
  });

  it("replacing a network within one stack while its own ranges and Port are on it: not refused, they follow onto the new one", async () => {
    const a = stackFor(h1, {}, "a");
    const program = (bridge: string) => () => {
      const n = new VirtualNetwork("own", {
        mode: "isolated",
        ipv4: { cidr: "10.78.0.0/24" },
        bridge: { name: bridge },
      });
      new DhcpRange("own-pool", { network: n, start: "10.78.0.100", end: "10.78.0.150" });
      new Port("own-tap", { network: n, name: "vn-owntap" });
    };
    try {
      await a.up(program("vn-own1"));
      await a.up(program("vn-own2"));
      const record = await sh("h1", "cat /var/lib/virtnet/networks/own/ranges/own-pool.json");
      expect(JSON.parse(record)).to.deep.include({
        name: "own-pool",
        start: "10.78.0.100",
        stack: "project/a",
      });
      expect(await sh("h1", "ip -o link show master vn-own2")).to.include("vn-owntap");
      expect(await sh("h1", "cat /var/lib/virtnet/networks/own/network.json")).to.include(
        '"stack":"project/a"',
      );
      expect(await sh("h1", "ip -o link show vn-own1 2>&1 || true")).to.include("does not exist");
    } finally {
      await a.destroy();
    }
  });
});
