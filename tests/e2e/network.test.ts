// VirtualNetwork end to end: every CRUD call goes through Pulumi's real dynamic-provider plugin over gRPC
// (tests/engine), against real lab hosts with real bridges, nftables, dnsmasq and guest traffic.
import * as pulumi from "@pulumi/pulumi";
import { expect } from "chai";
import { connect } from "../../provider/host";
import { legacyNftTableName, networkPaths, nftChainId } from "../../provider/naming";
import { applyNetwork } from "../../provider/orchestration/network";
import { observe } from "../../provider/orchestration/probe";
import { planApply } from "../../provider/plan/network";
import { buildNetworkSpec } from "../../provider/model/network";
import { VirtualNetwork, VirtualNetworkArgs } from "../../sdk";
import { DeploymentError, findOp, findResource, TestStack } from "../engine/engine";
import { isSecret } from "../engine/plugin";
import {
  guestAdd,
  guestAddr,
  guestDel,
  guestExec,
  guestHostIfName,
  hostExec,
  LabHost,
  upstreamExec,
} from "../lab/lab";
import { BACKENDS, kernelRules, renderedRules } from "./firewallSupport";
import {
  captureUpstream,
  clearText,
  connectionFor,
  labHosts,
  nftChainsOf,
  privateKeyOf,
  sh,
  projectDir,
  snapshot,
  sshAgent,
  stackFor,
} from "./support";

function program(name: string, args: VirtualNetworkArgs) {
  return () => {
    const n = new VirtualNetwork(name, args);
    return { bridgeName: n.bridgeName, gatewayIp: n.gatewayIp, cidr: n.cidr };
  };
}

async function ping(guest: string, ip: string): Promise<boolean> {
  return (await guestExec(guest, ["busybox", "ping", "-c", "1", "-W", "2", ip])).code === 0;
}

describe("VirtualNetwork on a lab host, through the engine path", function () {
  this.timeout(120_000);
  let h1: LabHost;

  before(async () => {
    [h1] = await labHosts(2);
  });

  describe("lifecycle", () => {
    let stack: TestStack;
    const args: VirtualNetworkArgs = {
      mode: "nat",
      ipv4: { cidr: "10.61.0.0/24" },
      domain: { name: "lab.test", localOnly: true },
      dns: { hosts: [{ ip: "10.61.0.10", hostnames: ["db"] }] },
    };
    before(() => (stack = stackFor(h1)));
    after(async () => {
      await stack.destroy();
    });

    it("creates the network and returns its bridge and gateway", async () => {
      const r = await stack.up(program("life", args));
      const op = findOp(r, "life")!;
      expect(op.op).to.equal("create");
      expect(op.calls).to.deep.equal(["check", "create"]);
      expect(r.outputs).to.include({ bridgeName: "vn-life", gatewayIp: "10.61.0.1", cidr: "10.61.0.0/24" });
      expect(await sh("h1", "ip -br addr show dev vn-life")).to.match(/10\.61\.0\.1\/24/);
    });

    it("puts exactly the previewed ruleset in the kernel", async () => {
      const outs = findResource(stack.state, "life")!.outputs;
      expect(await nftChainsOf("h1", outs.name)).to.equal(outs.rendered.nftables);
      expect(await sh("h1", `cat ${networkPaths("life").dnsmasqConf}`)).to.equal(outs.rendered.dnsmasqConf);
    });

    it("serializes a small provider with no secret, and stores the credentials as a secret", async () => {
      const r = await stack.preview(program("life", args));
      const reg = r.registrations.find((x) => x.name === "life")!;
      const provider = String(reg.inputs.__provider);
      expect(provider.length).to.be.below(8192);
      expect(provider).to.not.include("PRIVATE KEY");
      const state = findResource(stack.state, "life")!;
      expect(isSecret(state.outputs.__credentials)).to.equal(true);
      expect(clearText(stack.state)).to.not.include(privateKeyOf(h1).split("\n")[2]);
    });

    it("runs no provider mutation on a second up with no change", async () => {
      const before = await snapshot("h1");
      const r = await stack.up(program("life", args));
      const op = findOp(r, "life")!;
      expect(op.op).to.equal("same");
      expect(op.calls).to.deep.equal(["check", "diff"]);
      expect(await snapshot("h1")).to.equal(before);
    });

    it("shows the host change in preview: the rendered config differs line by line", async () => {
      const changed = { ...args, dns: { hosts: [{ ip: "10.61.0.11", hostnames: ["db"] }] } };
      const r = await stack.preview(program("life", changed));
      const op = findOp(r, "life")!;
      expect(op.op).to.equal("update");
      expect(op.diff!.changedKeys).to.include("rendered");
      expect(op.checkedInputs!.rendered.dnsmasqHosts).to.equal("10.61.0.11\tdb\n");
    });

    it("refuses bad input at check, naming each property, and changes nothing", async () => {
      const before = await snapshot("h1");
      const bad = program("bad", {
        mode: "nat",
        ipv4: { cidr: "10.62.0.5/24" },
        bridge: { name: "much-too-long-name" },
      });
      const err: DeploymentError = await stack.up(bad).then(
        () => expect.fail("up should fail"),
        (e) => e,
      );
      const op = findOp(err.result, "bad")!;
      expect(op.failures!.map((f) => f.property)).to.have.members(["ipv4.cidr", "bridge.name"]);
      expect(await snapshot("h1")).to.equal(before);
    });
  });

  // One matrix, run on each firewall backend; names and subnets apart so the runs never meet.
  const backendRuns = [
    { ...BACKENDS[0], prefix: "", subnet: (i: number) => `10.7${i}.0` },
    { ...BACKENDS[1], prefix: "fw", subnet: (i: number) => `10.248.${i}` },
  ];
  backendRuns.forEach((b) =>
    describe(`connectivity matrix, as libvirt's modes behave (firewall: ${b.label})`, () => {
      const modes = [
        { mode: "nat" as const, out: true, inbound: false, masquerade: true },
        { mode: "route" as const, out: true, inbound: true, masquerade: false },
        { mode: "open" as const, out: true, inbound: true, masquerade: false },
        { mode: "isolated" as const, out: false, inbound: false, masquerade: false },
      ];
      modes.forEach((m, i) => {
        describe(`mode ${m.mode}`, () => {
          const subnet = b.subnet(i);
          const name = `${b.prefix || "m"}${m.mode}`;
          const guestA = `${b.prefix}a${i}`;
          const guestB = `${b.prefix}b${i}`;
          let stack: TestStack;

          before(async () => {
            stack = stackFor(h1);
            await stack.up(
              program(name, {
                mode: m.mode,
                ipv4: { cidr: `${subnet}.0/24` },
                dns: { hosts: [{ ip: `${subnet}.10`, hostnames: ["db"] }] },
                ...(b.firewallBackend ? { firewallBackend: b.firewallBackend } : {}),
              }),
            );
            const bridge = findResource(stack.state, name)!.outputs.bridgeName;
            await guestAdd(guestA, "h1", bridge);
            await guestAdd(guestB, "h1", bridge);
            await guestAddr(guestA, `${subnet}.50/24`, `${subnet}.1`);
            await guestAddr(guestB, `${subnet}.51/24`, `${subnet}.1`);
            // Give upstream a route back, so only the host's firewall decides about inbound traffic.
            await upstreamExec(["ip", "route", "replace", `${subnet}.0/24`, "via", h1.uplinkAddress]);
          });
          after(async () => {
            await guestDel(guestA);
            await guestDel(guestB);
            await upstreamExec(["ip", "route", "del", `${subnet}.0/24`]);
            await stack.destroy();
          });

          it(`carries its rules in ${b.expected}, exactly as previewed`, async () => {
            const outs = findResource(stack.state, name)!.outputs;
            expect(outs.firewall.backend).to.equal(b.expected);
            expect(await kernelRules("h1", outs)).to.deep.equal(renderedRules(outs));
          });

          it("guest reaches the gateway and the other guest", async () => {
            expect(await ping(guestA, `${subnet}.1`)).to.equal(true);
            expect(await ping(guestA, `${subnet}.51`)).to.equal(true);
          });

          it("guest resolves names through the network's DNS", async () => {
            const r = await guestExec(guestA, ["busybox", "nslookup", "db", `${subnet}.1`]);
            expect(r.stdout).to.include(`${subnet}.10`);
          });

          it(`guest ${m.out ? "reaches" : "cannot reach"} the internet`, async () => {
            expect(await ping(guestA, "198.51.100.1")).to.equal(m.out);
          });

          if (m.out)
            it(`the internet sees ${m.masquerade ? "the host's uplink address" : "the guest's own address"}`, async () => {
              const seen = await captureUpstream("icmp and dst host 198.51.100.1", () =>
                ping(guestA, "198.51.100.1"),
              );
              const source = m.masquerade ? h1.uplinkAddress : `${subnet}.50`;
              expect(seen).to.include(`${source} > 198.51.100.1`);
            });

          it(`a new connection from the internet to the guest is ${m.inbound ? "allowed" : "blocked"}`, async () => {
            const r = await upstreamExec(["busybox", "ping", "-c", "1", "-W", "2", `${subnet}.50`]);
            expect(r.code === 0).to.equal(m.inbound);
          });
        });
      });
    }),
  );

  describe("update in place with a guest attached", () => {
    let stack: TestStack;
    before(async () => {
      stack = stackFor(h1);
      await stack.up(program("upd", { mode: "nat", ipv4: { cidr: "10.63.0.0/24" } }));
      await guestAdd("u1", "h1", "vn-upd");
      await guestAddr("u1", "10.63.0.50/24", "10.63.0.1");
      await upstreamExec(["ip", "route", "replace", "10.63.0.0/24", "via", h1.uplinkAddress]);
    });
    after(async () => {
      await guestDel("u1");
      await upstreamExec(["ip", "route", "del", "10.63.0.0/24"]);
      await stack.destroy();
    });

    it("changes mode, DNS and MTU without replacing the bridge or detaching the guest", async () => {
      const ifindex = await sh("h1", "cat /sys/class/net/vn-upd/ifindex");
      expect((await upstreamExec(["busybox", "ping", "-c", "1", "-W", "2", "10.63.0.50"])).code).to.not.equal(
        0,
      );
      const r = await stack.up(
        program("upd", {
          mode: "route",
          ipv4: { cidr: "10.63.0.0/24" },
          bridge: { mtu: 1400 },
          dns: { hosts: [{ ip: "10.63.0.9", hostnames: ["new"] }] },
        }),
      );
      expect(findOp(r, "upd")!.op).to.equal("update");
      expect(await sh("h1", "cat /sys/class/net/vn-upd/ifindex")).to.equal(ifindex);
      expect(await sh("h1", `cat /sys/class/net/${guestHostIfName("u1")}/master/ifindex`)).to.equal(ifindex);
      expect((await sh("h1", "cat /sys/class/net/vn-upd/mtu")).trim()).to.equal("1400");
      expect(await ping("u1", "10.63.0.1")).to.equal(true);
      expect((await upstreamExec(["busybox", "ping", "-c", "1", "-W", "2", "10.63.0.50"])).code).to.equal(0);
      expect((await guestExec("u1", ["busybox", "nslookup", "new", "10.63.0.1"])).stdout).to.include(
        "10.63.0.9",
      );
    });

    it("changes subnet, domain and STP without replacing the bridge or detaching the guest", async () => {
      const ifindex = await sh("h1", "cat /sys/class/net/vn-upd/ifindex");
      const port = `/sys/class/net/${guestHostIfName("u1")}`;
      expect((await sh("h1", "cat /sys/class/net/vn-upd/bridge/stp_state")).trim()).to.equal("0");
      const r = await stack.up(
        program("upd", {
          mode: "route",
          ipv4: { cidr: "10.73.0.0/24" },
          bridge: { mtu: 1400, stp: true },
          domain: { name: "upd.test", localOnly: true },
          dns: { hosts: [{ ip: "10.73.0.9", hostnames: ["new"] }] },
        }),
      );
      expect(findOp(r, "upd")!.op).to.equal("update");
      expect(await sh("h1", "cat /sys/class/net/vn-upd/ifindex")).to.equal(ifindex);
      expect(await sh("h1", `cat ${port}/master/ifindex`)).to.equal(ifindex);
      expect((await sh("h1", "cat /sys/class/net/vn-upd/bridge/stp_state")).trim()).to.equal("1");
      expect((await sh("h1", "ip -br -4 addr show dev vn-upd")).trim()).to.match(/ 10\.73\.0\.1\/24$/);
      const outs = findResource(stack.state, "upd")!.outputs;
      expect(await kernelRules("h1", outs)).to.deep.equal(renderedRules(outs));
      // With STP on, the guest's port learns before it forwards (the kernel's 2 s forward delay, twice).
      for (let i = 0; i < 100 && (await sh("h1", `cat ${port}/brport/state`)).trim() !== "3"; i++)
        await new Promise((res) => setTimeout(res, 100));
      expect((await sh("h1", `cat ${port}/brport/state`)).trim(), "port state forwarding").to.equal("3");
      await guestAddr("u1", "10.73.0.50/24", "10.73.0.1");
      expect(await ping("u1", "10.73.0.1")).to.equal(true);
      expect((await guestExec("u1", ["busybox", "nslookup", "new.upd.test", "10.73.0.1"])).stdout).to.include(
        "10.73.0.9",
      );
      await upstreamExec(["ip", "route", "replace", "10.73.0.0/24", "via", h1.uplinkAddress]);
      try {
        expect((await upstreamExec(["busybox", "ping", "-c", "1", "-W", "2", "10.73.0.50"])).code).to.equal(
          0,
        );
      } finally {
        await upstreamExec(["ip", "route", "del", "10.73.0.0/24"]);
      }
    });
  });

  describe("a network from an earlier virtnet, with an nft table of its own", () => {
    let stack: TestStack;
    const prog = program("legacy", { mode: "nat", ipv4: { cidr: "10.72.0.0/24" } });
    after(async () => {
      await stack.destroy(); // again: a no-op unless the test failed half way
    });

    it("refresh reports it, the next up moves its rules into the shared table in one step, destroy leaves nothing", async () => {
      stack = stackFor(h1);
      await stack.up(prog);
      const outs = findResource(stack.state, "legacy")!.outputs;
      // The host as an earlier virtnet left it: the same rules in "inet virtnet_<name>_<hash>", chains by hook.
      const id = nftChainId("legacy");
      const legacy = (outs.rendered.nftables as string)
        .replace(/^table inet virtnet \{/, `table inet ${legacyNftTableName("legacy")} {`)
        .replaceAll(`chain ${id}.`, "chain ");
      const chains = outs.firewall.chains as string[];
      await sh(
        "h1",
        `${chains.map((c) => `nft delete chain inet virtnet ${c}`).join("; ")}; printf '%s' '${legacy}' | nft -f -`,
      );
      const before = await sh("h1", "nft list tables");
      expect(before).to.include(`table inet ${legacyNftTableName("legacy")}`);

      const refreshed = await stack.refresh();
      expect(refreshed.changes[0].op).to.equal("update");
      expect(findResource(stack.state, "legacy")!.outputs.drift).to.deep.equal(["apply firewall"]);
      const r = await stack.up(prog);
      expect(findOp(r, "legacy")!.op).to.equal("update");
      expect(await sh("h1", "nft list tables")).to.not.include(legacyNftTableName("legacy"));
      expect(await nftChainsOf("h1", "legacy")).to.equal(outs.rendered.nftables);
      const again = await stack.refresh();
      expect(again.changes[0].op).to.equal("same");
      await stack.destroy();
      expect(await sh("h1", "nft list tables")).to.not.include(legacyNftTableName("legacy"));
      expect(await sh("h1", "nft list chains inet")).to.not.include(`${id}.`);
    });
  });

  describe("drift", () => {
    let stack: TestStack;
    const prog = program("drift", { mode: "nat", ipv4: { cidr: "10.64.0.0/24" } });
    before(async () => {
      stack = stackFor(h1);
      await stack.up(prog);
    });
    after(async () => {
      await stack.destroy();
    });

    /** `nft flush chain` or `delete chain` of each of the network's chains. */
    const nftEach = (op: string, outs: Record<string, any>) =>
      (outs.firewall.chains as string[]).map((c) => `nft ${op} chain inet virtnet ${c}`).join("; ");

    it("refresh reports a deleted bridge, flushed chains and a killed dnsmasq; up repairs them", async () => {
      const outs = findResource(stack.state, "drift")!.outputs;
      await sh(
        "h1",
        `kill $(cat ${networkPaths("drift").dnsmasqPid}); ${nftEach("flush", outs)}; ip link del vn-drift`,
      );
      const refreshed = await stack.refresh();
      expect(refreshed.changes[0].op).to.equal("update");
      const drift = findResource(stack.state, "drift")!.outputs.drift;
      expect(drift).to.include.members(["create bridge", "apply firewall", "start dnsmasq"]);

      const r = await stack.up(prog);
      expect(findOp(r, "drift")!.op).to.equal("update");
      expect(await nftChainsOf("h1", outs.name)).to.equal(outs.rendered.nftables);
      expect(await sh("h1", "ip -br link show dev vn-drift")).to.match(/^vn-drift/);
      const again = await stack.refresh();
      expect(again.changes[0].op).to.equal("same");
      expect(findResource(stack.state, "drift")!.outputs.drift).to.deep.equal([]);
    });

    it("refresh drops a network that is gone entirely from the state", async () => {
      const outs = findResource(stack.state, "drift")!.outputs;
      await sh(
        "h1",
        `kill $(cat ${networkPaths("drift").dnsmasqPid}); ${nftEach("delete", outs)}; ip link del vn-drift; rm -rf ${networkPaths("drift").stateDir}`,
      );
      const refreshed = await stack.refresh();
      expect(refreshed.changes[0].op).to.equal("delete");
      expect(findResource(stack.state, "drift")).to.equal(undefined);
      await stack.up(prog); // back, so `after` has something to destroy
    });
  });

  describe("failures leave the host as it was", () => {
    [
      { ...BACKENDS[0], name: "fail", net: "10.65.0" },
      { ...BACKENDS[1], name: "fwfail", net: "10.249.1" },
    ].forEach((b) =>
      it(`${b.label}: a create made to fail after each of its actions is rolled back completely`, async () => {
        const host = await connect(connectionFor(h1));
        const spec = buildNetworkSpec(
          {
            mode: "nat",
            ipv4: { cidr: `${b.net}.0/24` },
            dns: { hosts: [{ ip: `${b.net}.2`, hostnames: ["x"] }] },
            ...(b.firewallBackend ? { firewallBackend: b.firewallBackend } : {}),
          },
          b.name,
        ).spec!;
        const observed = await observe(host, spec.name, spec.bridge.name);
        const actions = planApply(spec, observed, networkPaths(spec.name)).actions.map((a) => a.name);
        expect(actions.length).to.be.at.least(8);
        const before = await snapshot("h1");
        for (const action of actions) {
          const err = await applyNetwork(host, spec, { failAfter: action }).then(
            () => expect.fail(`apply should fail after "${action}"`),
            (e: Error) => e,
          );
          expect(err.message).to.include(`${action} (injected failure)`);
          expect(err.message).to.include(`network "${b.name}"`);
          expect(await snapshot("h1"), `after failing at "${action}"`).to.equal(before);
        }
      }),
    );

    it("a bridge that is not virtnet's fails at create, before any change, with a clear message", async () => {
      await sh("h1", "ip link add vn-taken type bridge");
      try {
        const before = await snapshot("h1");
        const stack = stackFor(h1);
        const err: DeploymentError = await stack
          .up(program("taken", { mode: "nat", ipv4: { cidr: "10.66.0.0/24" } }))
          .then(
            () => expect.fail("up should fail"),
            (e) => e,
          );
        expect(err.message).to.match(/interface vn-taken already exists and is not managed by virtnet/);
        expect(err.message).to.include(h1.address);
        expect(await snapshot("h1")).to.equal(before);
      } finally {
        await sh("h1", "ip link del vn-taken");
      }
    });

    it("a subnet that overlaps the host's uplink fails at create with a clear message", async () => {
      const stack = stackFor(h1);
      const err: DeploymentError = await stack
        .up(program("clash", { mode: "nat", ipv4: { cidr: "198.19.0.0/25" } }))
        .then(
          () => expect.fail("up should fail"),
          (e) => e,
        );
      expect(err.message).to.match(/subnet 198\.19\.0\.0\/25 overlaps 198\.19\.0\.\d+\/24 on eth0/);
    });
  });

  describe("exact teardown beside a user's table and a Docker-like FORWARD DROP", () => {
    before(async () => {
      await sh(
        "h1",
        [
          "nft add table inet userfw",
          "nft add chain inet userfw input '{ type filter hook input priority 0; policy accept; }'",
          "nft add rule inet userfw input tcp dport 2222 counter accept",
          "nft add chain inet userfw forward '{ type filter hook forward priority 0; policy drop; }'",
          "iptables -N DOCKER-USER",
          "iptables -A DOCKER-USER -j RETURN",
          "iptables -A FORWARD -j DOCKER-USER",
          "iptables -P FORWARD DROP",
        ].join(" && "),
      );
    });
    after(async () => {
      await sh(
        "h1",
        "iptables -P FORWARD ACCEPT; iptables -F FORWARD; iptables -F DOCKER-USER; iptables -X DOCKER-USER; nft delete table inet userfw",
      );
    });

    [
      { ...BACKENDS[0], name: "tidy", cidr: "10.67.0.0/24" },
      { ...BACKENDS[1], name: "fwtidy", cidr: "10.249.0.0/24" },
    ].forEach((b) =>
      it(`${b.label}: accepts the bridge in DOCKER-USER, warns about the other dropping chain, and leaves everything else byte-identical after delete`, async () => {
        const before = await snapshot("h1");
        const stack = stackFor(h1);
        const r = await stack.up(
          program(b.name, {
            mode: "nat",
            ipv4: { cidr: b.cidr },
            ...(b.firewallBackend ? { firewallBackend: b.firewallBackend } : {}),
          }),
        );
        const outs = findOp(r, b.name)!.outputs!;
        expect(outs.firewall.backend).to.equal(b.expected);
        const warnings = (outs.warnings as string[]).join("\n");
        expect(warnings).to.match(/"inet userfw forward" has policy drop/);
        expect(warnings).to.not.include("ip filter FORWARD"); // Docker's: answered in DOCKER-USER
        expect(await sh("h1", "iptables -S DOCKER-USER")).to.include(`-A DOCKER-USER -i vn-${b.name} `);
        expect(await snapshot("h1")).to.not.equal(before);
        await stack.destroy();
        expect(await snapshot("h1")).to.equal(before);
      }),
    );
  });

  describe("import and stack config", () => {
    it("imports an existing network by id with VirtualNetwork.get", async () => {
      const owner = stackFor(h1);
      await owner.up(
        program("imp", { mode: "route", ipv4: { cidr: "10.68.0.0/24" }, bridge: { mtu: 1450 } }),
      );
      try {
        const reader = stackFor(h1);
        const r = await reader.up(() => {
          const n = VirtualNetwork.get("imported", `${h1.address}:22/imp`);
          return { mode: n.mode, cidr: n.cidr, bridgeName: n.bridgeName };
        });
        expect(r.outputs).to.include({ mode: "route", cidr: "10.68.0.0/24", bridgeName: "vn-imp" });
      } finally {
        await owner.destroy();
      }
    });
  });

  describe("an STP bridge", () => {
    it("gets the kernel's 2 s minimum forward delay and stays in sync: no change on a second up or a refresh", async () => {
      const stack = stackFor(h1);
      const prog = program("stp", { mode: "nat", ipv4: { cidr: "10.71.0.0/24" }, bridge: { stp: true } });
      try {
        await stack.up(prog);
        expect((await sh("h1", "cat /sys/class/net/vn-stp/bridge/forward_delay")).trim()).to.equal("200");
        expect(findOp(await stack.up(prog), "stp")!.op).to.equal("same");
        expect((await stack.refresh()).changes[0].op).to.equal("same");
      } finally {
        await stack.destroy();
      }
    });
  });

  describe("connections", () => {
    it("works through an explicit connection as a non-root user with sudo, keeping the key secret", async () => {
      const stack = new TestStack({ cwd: projectDir() });
      const key = privateKeyOf(h1);
      const r = await stack.up(() => {
        const n = new VirtualNetwork("viasudo", {
          connection: {
            host: h1.address,
            hostKey: h1.hostKey,
            user: "vnsudo",
            sudo: true,
            privateKey: pulumi.secret(key),
          },
          mode: "isolated",
          ipv4: { cidr: "10.69.0.0/24" },
        });
        return { bridgeName: n.bridgeName };
      });
      try {
        expect(r.outputs.bridgeName).to.equal("vn-viasudo");
        expect(await sh("h1", "stat -c %U /var/lib/virtnet/networks/viasudo/network.json")).to.equal(
          "root\n",
        );
        const res = findResource(stack.state, "viasudo")!;
        expect(isSecret(res.outputs.__credentials)).to.equal(true);
        expect(res.outputs.connection).to.deep.include({ host: h1.address, user: "vnsudo", sudo: true });
        // Secrets sit in the state only inside secret wrappers (the engine encrypts those); nowhere else.
        expect(clearText(stack.state)).to.not.include(key.split("\n")[2]);
        expect(JSON.stringify(stack.state)).to.include(key.split("\n")[2]); // proves the check can fail
        expect(String(r.registrations.find((x) => x.name === "viasudo")!.inputs.__provider)).to.not.include(
          key.split("\n")[1],
        );
      } finally {
        await stack.destroy();
      }
    });

    it("logs in through the ssh-agent of the deployment (SSH_AUTH_SOCK), with no key in the program or state", async () => {
      const agent = await sshAgent(h1.privateKeyPath);
      // The plugin runs with the agent, as under `pulumi up` in a shell with ssh-agent; nothing else has a key.
      const stack = new TestStack({ cwd: projectDir(), pluginEnv: { SSH_AUTH_SOCK: agent.socket } });
      const prog = program("viaagent", {
        connection: { host: h1.address, hostKey: h1.hostKey },
        mode: "isolated",
        ipv4: { cidr: "10.69.1.0/24" },
      });
      try {
        const r = await stack.up(prog);
        expect(findOp(r, "viaagent")!.op).to.equal("create");
        expect(await sh("h1", "ip -br link show dev vn-viaagent")).to.match(/^vn-viaagent/);
        const res = findResource(stack.state, "viaagent")!;
        expect(res.outputs.connection).to.deep.equal({ host: h1.address, hostKey: h1.hostKey }); // no socket path
        expect(JSON.stringify(stack.state)).to.not.include(privateKeyOf(h1).split("\n")[2]);
        expect((await stack.refresh()).changes[0].op).to.equal("same");
      } finally {
        await stack.destroy();
        await agent.stop();
      }
      expect(await sh("h1", "ip -br link show dev vn-viaagent 2>&1 || true")).to.match(/does not exist/);
    });

    it("lets two deployments apply to one host at the same time without losing anything", async () => {
      const a = stackFor(h1);
      const b = stackFor(h1);
      await Promise.all([
        a.up(program("cona", { mode: "nat", ipv4: { cidr: "10.90.1.0/24" } })),
        b.up(program("conb", { mode: "route", ipv4: { cidr: "10.90.2.0/24" } })),
      ]);
      try {
        for (const [stack, name] of [
          [a, "cona"],
          [b, "conb"],
        ] as const) {
          const outs = findResource(stack.state, name)!.outputs;
          expect(await nftChainsOf("h1", outs.name)).to.equal(outs.rendered.nftables);
          expect(await sh("h1", `ip -br link show dev vn-${name}`)).to.match(new RegExp(`^vn-${name}`));
        }
      } finally {
        await Promise.all([a.destroy(), b.destroy()]);
      }
      expect(await sh("h1", "ls /var/lib/virtnet 2>/dev/null || true")).to.equal("");
    });
  });

  describe("the whole-host snapshot the tests compare", () => {
    const flipForwarding6 =
      "sysctl -qw net.ipv6.conf.all.forwarding=$((1 - $(sysctl -n net.ipv6.conf.all.forwarding)))";
    it("sees a stray write anywhere in /etc, an ip6tables chain and a changed IPv6 forwarding", async () => {
      const before = await snapshot("h1");
      // The ip6tables chain makes iptables-nft's table, which its undo removes: there must be none before.
      expect(before).to.not.include("table ip6 filter");
      for (const [stray, undo] of [
        ["echo x > /etc/vn-stray", "rm /etc/vn-stray"],
        ["echo '# x' >> /etc/hosts", "sed -i '$d' /etc/hosts"],
        ["ip6tables -N VN-STRAY", "ip6tables -X VN-STRAY && nft delete table ip6 filter"],
        [flipForwarding6, flipForwarding6],
      ]) {
        await sh("h1", stray);
        try {
          expect(await snapshot("h1"), stray).to.not.equal(before);
        } finally {
          await sh("h1", undo);
        }
        expect(await snapshot("h1"), undo).to.equal(before);
      }
    });
  });

  describe("after every test", () => {
    it("leaves no virtnet directory or dnsmasq behind on the host", async () => {
      const r = await hostExec("h1", [
        "sh",
        "-c",
        "ls /var/lib/virtnet 2>/dev/null; pgrep -c dnsmasq || true",
      ]);
      expect(r.stdout.trim()).to.equal("0");
    });
  });
});
