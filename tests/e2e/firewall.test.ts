// Firewalls that are not ours, on a lab host, on both backends: Docker's FORWARD DROP (answered with accepts
// in DOCKER-USER that delete takes back, leaving Docker's rules byte-identical) and firewalld's tables (a clear
// message at create; a flush that removes our rules shows as drift and the next up repairs it).
import { expect } from "chai";
import { VirtualNetwork, VirtualNetworkArgs } from "../../sdk";
import { DeploymentError, findOp, findResource } from "../engine/engine";
import { guestAdd, guestAddr, guestDel, guestExec, LabHost, upstreamExec } from "../lab/lab";
import {
  BACKENDS,
  DOCKER_SETUP,
  DOCKER_TEARDOWN,
  FIREWALLD_TABLE,
  kernelRules,
  renderedRules,
  trustedZone,
} from "./firewallSupport";
import { captureUpstream, labHosts, sh, snapshot, stackFor } from "./support";

const HOST = "h2"; // network.test.ts works on h1

function program(name: string, args: VirtualNetworkArgs) {
  return () => {
    const n = new VirtualNetwork(name, args);
    return { bridgeName: n.bridgeName };
  };
}

async function ping(guest: string, ip: string): Promise<boolean> {
  return (await guestExec(guest, ["busybox", "ping", "-c", "1", "-W", "2", ip])).code === 0;
}

/** iptables as Docker's rules are compared: everything, without counters or comments of iptables-save. */
async function iptablesSave(): Promise<string> {
  return sh(HOST, "iptables-save | sed -e '/^#/d' -e 's/ \\[[0-9]*:[0-9]*\\]$//'");
}

describe("firewalls that are not ours, on a lab host", function () {
  this.timeout(180_000);
  let h: LabHost;

  before(async () => {
    [, h] = await labHosts(2);
    // The host starts with no iptables tables, so what Docker's setup adds is all Docker's.
    expect(await sh(HOST, "nft list tables")).to.not.match(/table ip6? (filter|nat)/);
  });

  describe("Docker's chains (FORWARD policy DROP, DOCKER-USER first)", () => {
    before(() => sh(HOST, DOCKER_SETUP));
    after(() => sh(HOST, DOCKER_TEARDOWN));

    BACKENDS.forEach((b, bi) => {
      const cases = [
        { mode: "nat" as const, masquerade: true },
        { mode: "route" as const, masquerade: false },
      ];
      cases.forEach((c, ci) => {
        const subnet = `10.245.${10 * bi + ci}`;
        const name = `fwd${c.mode}${bi}`;
        const guest = `fd${bi}${ci}`;
        it(`${b.label}: a ${c.mode} network's guest gets out; delete leaves Docker's rules byte-identical`, async () => {
          const docker = await iptablesSave();
          const before = await snapshot(HOST);
          const stack = stackFor(h);
          try {
            const r = await stack.up(
              program(name, {
                mode: c.mode,
                ipv4: { cidr: `${subnet}.0/24` },
                ...(b.firewallBackend ? { firewallBackend: b.firewallBackend } : {}),
              }),
            );
            const outs = findOp(r, name)!.outputs!;
            expect(outs.firewall.backend).to.equal(b.expected);
            expect(outs.warnings).to.deep.equal([]); // Docker's FORWARD DROP is answered, not warned about
            const bridge = outs.bridgeName as string;
            const dockerUser = await sh(HOST, "iptables -S DOCKER-USER");
            expect(dockerUser).to.include(
              `-A DOCKER-USER -i ${bridge} -m comment --comment "virtnet: network ${name}" -j ACCEPT`,
            );
            expect(dockerUser).to.include(
              `-A DOCKER-USER -o ${bridge} -m comment --comment "virtnet: network ${name}" -j ACCEPT`,
            );
            expect(await kernelRules(HOST, outs)).to.deep.equal(renderedRules(outs));

            await guestAdd(guest, HOST, bridge);
            await guestAddr(guest, `${subnet}.50/24`, `${subnet}.1`);
            if (!c.masquerade)
              await upstreamExec(["ip", "route", "replace", `${subnet}.0/24`, "via", h.uplinkAddress]);
            const seen = await captureUpstream("icmp and dst host 198.51.100.1", () =>
              ping(guest, "198.51.100.1"),
            );
            expect(seen).to.include(`${c.masquerade ? h.uplinkAddress : `${subnet}.50`} > 198.51.100.1`);

            if (c.mode === "nat") {
              // With nftables, the accepts are what lets the guest past Docker's policy DROP. With iptables, the
              // network's own jump sits at the top of FORWARD, before Docker's, so they are a second line only.
              await sh(
                HOST,
                `iptables -D DOCKER-USER -i ${bridge} -m comment --comment "virtnet: network ${name}" -j ACCEPT`,
              );
              expect(await ping(guest, "198.51.100.1")).to.equal(b.expected === "iptables");
              await stack.refresh();
              expect(findResource(stack.state, name)!.outputs.drift).to.deep.equal([
                "accept bridge in iptables DOCKER-USER",
              ]);
              await stack.up(
                program(name, {
                  mode: c.mode,
                  ipv4: { cidr: `${subnet}.0/24` },
                  ...(b.firewallBackend ? { firewallBackend: b.firewallBackend } : {}),
                }),
              );
              expect(await ping(guest, "198.51.100.1")).to.equal(true);
            }
          } finally {
            await guestDel(guest);
            if (!c.masquerade) await upstreamExec(["ip", "route", "del", `${subnet}.0/24`]);
            await stack.destroy();
          }
          expect(await iptablesSave()).to.equal(docker);
          expect(await snapshot(HOST)).to.equal(before);
        });
      });
    });
  });

  describe("firewalld's tables", () => {
    before(() => sh(HOST, `printf '%s' '${FIREWALLD_TABLE}' | nft -f -`));
    after(() => sh(HOST, "nft delete table inet firewalld 2>/dev/null; :"));

    BACKENDS.forEach((b, bi) => {
      const subnet = `10.246.${bi}`;
      const name = `fwz${bi}`;
      const guest = `fz${bi}`;
      const args: VirtualNetworkArgs = {
        mode: "nat",
        ipv4: { cidr: `${subnet}.0/24` },
        ...(b.firewallBackend ? { firewallBackend: b.firewallBackend } : {}),
      };

      it(`${b.label}: create says what blocks the network and how to fix it, and the fix works`, async () => {
        const before = await snapshot(HOST);
        const stack = stackFor(h);
        try {
          const r = await stack.up(program(name, args));
          const outs = findOp(r, name)!.outputs!;
          const bridge = outs.bridgeName as string;
          const warning = (outs.warnings as string[]).join("\n");
          expect(warning).to.include('firewalld is active on this host (nft table "inet firewalld")');
          expect(warning).to.include(`firewall-cmd --zone=trusted --add-interface=${bridge}`);
          expect(warning).to.include('its own zone "libvirt"');
          await guestAdd(guest, HOST, bridge);
          await guestAddr(guest, `${subnet}.50/24`, `${subnet}.1`);
          expect(await ping(guest, "198.51.100.1")).to.equal(false); // what the message says: firewalld blocks it
          await sh(HOST, trustedZone(bridge)); // what `firewall-cmd --zone=trusted --add-interface` does
          expect(await ping(guest, "198.51.100.1")).to.equal(true);
        } finally {
          await guestDel(guest);
          await stack.destroy();
        }
        await sh(HOST, `nft delete table inet firewalld && printf '%s' '${FIREWALLD_TABLE}' | nft -f -`);
        expect(await snapshot(HOST)).to.equal(before);
      });

      it(`${b.label}: a flush that removes our rules is reported by refresh and repaired by the next up`, async () => {
        const stack = stackFor(h);
        try {
          await stack.up(program(name, args));
          const outs = findResource(stack.state, name)!.outputs;
          await sh(HOST, `nft flush ruleset && printf '%s' '${FIREWALLD_TABLE}' | nft -f -`); // as a reload does
          const refreshed = await stack.refresh();
          expect(refreshed.changes[0].op).to.equal("update");
          const drift = findResource(stack.state, name)!.outputs.drift as string[];
          expect(drift.filter((d) => d.includes("firewall")).length).to.be.at.least(1);
          expect(drift).to.include(
            b.expected === "nftables" ? "apply firewall" : "apply firewall: iptables filter",
          );
          const r = await stack.up(program(name, args));
          expect(findOp(r, name)!.op).to.equal("update");
          expect(await kernelRules(HOST, outs)).to.deep.equal(renderedRules(outs));
          const again = await stack.refresh();
          expect(again.changes[0].op).to.equal("same");
          expect(findResource(stack.state, name)!.outputs.drift).to.deep.equal([]);
        } finally {
          await stack.destroy();
        }
      });
    });
  });

  describe("bridge.zone on a host without firewalld", () => {
    it("fails at create before any change, naming firewall-cmd", async () => {
      const before = await snapshot(HOST);
      const stack = stackFor(h);
      const err: DeploymentError = await stack
        .up(
          program("fwnozone", { mode: "nat", ipv4: { cidr: "10.247.0.0/24" }, bridge: { zone: "trusted" } }),
        )
        .then(
          () => expect.fail("up should fail"),
          (e) => e,
        );
      expect(err.message).to.match(
        /bridge\.zone "trusted" needs firewalld, but command "firewall-cmd" is not installed/,
      );
      expect(err.message).to.include(h.address);
      expect(await snapshot(HOST)).to.equal(before);
      await stack.destroy();
    });
  });
});
