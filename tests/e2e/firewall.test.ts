// Firewalls that are not ours, for real, on both backends: Debian's Docker (docker.service) and firewalld
// (firewalld.service) started by systemd in a lab host that booted it. Docker's FORWARD DROP is answered with
// accepts in DOCKER-USER that delete takes back, leaving Docker's rules byte-identical; firewalld's zones
// decide what guests get unless bridge.zone puts the bridge in one that accepts them.
import { expect } from "chai";
import { DhcpRange, VirtualNetwork, VirtualNetworkArgs } from "../../sdk";
import { DeploymentError, findOp, findResource, TestStack } from "../engine/engine";
import {
  guestAdd,
  guestAddr,
  guestDel,
  guestDhcp,
  guestExec,
  hostReboot,
  LabHost,
  labStatus,
  upstreamExec,
} from "../lab/lab";
import { DOCKER_SETUP } from "../support/docker";
import { BACKENDS, kernelRules, renderedRules } from "./firewallSupport";
import { captureUpstream, labHosts, sh, snapshot, stackFor } from "./support";

const HOST = "h2"; // booted with systemd here; network.test.ts works on h1

/** Another host of the lab as it is (labHosts() would bring up a fresh lab: HOST runs systemd). */
function plainHost(): LabHost {
  return labStatus().hosts.find((x) => x.name === "h1")!;
}

function program(name: string, args: VirtualNetworkArgs, range?: { start: string; end: string }) {
  return () => {
    const n = new VirtualNetwork(name, args);
    if (range) new DhcpRange(`${name}pool`, { network: n, ...range });
    return { bridgeName: n.bridgeName };
  };
}

async function ping(guest: string, ip = "198.51.100.1"): Promise<boolean> {
  return (await guestExec(guest, ["busybox", "ping", "-c", "1", "-W", "2", ip])).code === 0;
}

/** iptables as Docker's rules are compared: everything, without the comments and counters of iptables-save. */
async function iptablesSave(host = HOST): Promise<string> {
  return sh(host, "iptables-save | sed -e '/^#/d' -e 's/ \\[[0-9]*:[0-9]*\\]$//'");
}

/** Starts a unit, waits until `ready` succeeds, and says how long that took (the figure the report gives). */
async function startUnit(unit: string, ready = "true"): Promise<number> {
  const t0 = Date.now();
  await sh(HOST, `systemctl start ${unit} && until ${ready}; do sleep 0.02; done`);
  const ms = Date.now() - t0;
  expect(await sh(HOST, `systemctl is-active ${unit}`)).to.equal("active\n");
  return ms;
}

describe("Docker and firewalld, for real, on a lab host booted with systemd", function () {
  this.timeout(180_000);
  let h: LabHost;

  before(async () => {
    await labHosts(2);
    h = await hostReboot(HOST, { init: "systemd" });
  });
  after(() => hostReboot(HOST, { init: "sshd" }));

  describe("Docker (docker.service: FORWARD policy DROP, DOCKER-USER first)", () => {
    before(async () => {
      expect(await sh(HOST, "nft list tables")).to.equal(""); // what Docker adds is all Docker's
      const ms = await startUnit("docker.service");
      console.log(`      (docker.service with containerd.service started in ${ms} ms)`);
    });
    after(async () => {
      h = await hostReboot(HOST); // systemctl reboot; a fresh network namespace: Docker's chains are gone
    });

    it("makes the chains the unit tests model (tests/support/docker.ts)", async () => {
      const other = plainHost();
      const real = await iptablesSave();
      await sh(other.name, DOCKER_SETUP);
      try {
        expect(await iptablesSave(other.name)).to.equal(real);
      } finally {
        await sh(other.name, "nft delete table ip filter; nft delete table ip nat; :");
      }
      expect(await sh(HOST, "ip -br link show dev docker0")).to.match(/^docker0 /);
      expect(await sh(HOST, "sysctl -n net.ipv4.ip_forward")).to.equal("1\n");
    });

    BACKENDS.forEach((b, bi) => {
      const cases = [
        { mode: "nat" as const, masquerade: true },
        { mode: "route" as const, masquerade: false },
        { mode: "open" as const, masquerade: false },
      ];
      cases.forEach((c, ci) => {
        const subnet = `10.245.${10 * bi + ci}`;
        const name = `fwd${c.mode}${bi}`;
        const guest = `fd${bi}${ci}`;
        const args: VirtualNetworkArgs = {
          mode: c.mode,
          ipv4: { cidr: `${subnet}.0/24` },
          ...(b.firewallBackend ? { firewallBackend: b.firewallBackend } : {}),
        };
        it(`${b.label}: a ${c.mode} network's guest gets out; delete leaves Docker's rules byte-identical`, async () => {
          const docker = await iptablesSave();
          const before = await snapshot(HOST);
          const stack = stackFor(h);
          try {
            const r = await stack.up(program(name, args));
            const outs = findOp(r, name)!.outputs!;
            expect(outs.firewall.backend).to.equal(b.expected);
            expect(outs.warnings).to.deep.equal([]); // Docker's FORWARD DROP is answered, not warned about
            const bridge = outs.bridgeName as string;
            const accept = (dir: string) =>
              `-A DOCKER-USER -${dir} ${bridge} -m comment --comment "virtnet: network ${name}" -j ACCEPT`;
            const dockerUser = await sh(HOST, "iptables -S DOCKER-USER");
            expect(dockerUser).to.include(accept("i")).and.to.include(accept("o"));
            expect(await kernelRules(HOST, outs)).to.deep.equal(renderedRules(outs));

            await guestAdd(guest, HOST, bridge);
            await guestAddr(guest, `${subnet}.50/24`, `${subnet}.1`);
            if (!c.masquerade)
              await upstreamExec(["ip", "route", "replace", `${subnet}.0/24`, "via", h.uplinkAddress]);
            const seen = await captureUpstream("icmp and dst host 198.51.100.1", () => ping(guest));
            expect(seen).to.include(`${c.masquerade ? h.uplinkAddress : `${subnet}.50`} > 198.51.100.1`);

            if (c.mode === "nat") {
              // With nftables, the accepts are what lets the guest past Docker's policy DROP. With iptables, the
              // network's own jump sits at the top of FORWARD, before Docker's, so they are a second line only.
              await sh(HOST, `iptables ${accept("i").replace(/^-A/, "-D")}`);
              expect(await ping(guest)).to.equal(b.expected === "iptables");
              await stack.refresh();
              expect(findResource(stack.state, name)!.outputs.drift).to.deep.equal([
                "accept bridge in iptables DOCKER-USER",
              ]);
              await stack.up(program(name, args));
              expect(await ping(guest)).to.equal(true);
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

    it("a restart of dockerd while networks exist leaves them working and in sync, on both backends", async () => {
      const stacks: TestStack[] = [];
      const guests: string[] = [];
      try {
        for (const [bi, b] of BACKENDS.entries()) {
          const name = `fwdrs${bi}`;
          const stack = stackFor(h);
          stacks.push(stack);
          const r = await stack.up(
            program(name, {
              mode: "nat",
              ipv4: { cidr: `10.245.${30 + bi}.0/24` },
              ...(b.firewallBackend ? { firewallBackend: b.firewallBackend } : {}),
            }),
          );
          const guest = `fdr${bi}`;
          guests.push(guest);
          await guestAdd(guest, HOST, findOp(r, name)!.outputs!.bridgeName);
          await guestAddr(guest, `10.245.${30 + bi}.50/24`, `10.245.${30 + bi}.1`);
          expect(await ping(guest)).to.equal(true);
        }
        const pid = await sh(HOST, "systemctl show -p MainPID --value docker.service");
        await sh(HOST, "systemctl restart docker.service");
        expect(await sh(HOST, "systemctl show -p MainPID --value docker.service")).to.not.equal(pid);
        for (const guest of guests) expect(await ping(guest), guest).to.equal(true);
        for (const stack of stacks) {
          const refreshed = await stack.refresh();
          expect(refreshed.changes.map((ch) => ch.op)).to.deep.equal(["same"]);
        }
      } finally {
        for (const guest of guests) await guestDel(guest);
        for (const stack of stacks) await stack.destroy();
      }
    });
  });

  describe("firewalld (firewalld.service, default zone public)", () => {
    before(async () => {
      // firewalld.service is Type=dbus: systemctl returns when firewalld has its bus name, before its rules
      // are in; `firewall-cmd --state` says "running" once they are.
      const ms = await startUnit("firewalld.service", "firewall-cmd --state >/dev/null 2>&1");
      console.log(`      (firewalld.service started in ${ms} ms)`);
      expect(await sh(HOST, "firewall-cmd --get-default-zone")).to.equal("public\n");
      // firewalld makes a zone's chains when the zone is first used and keeps them: use "trusted" once, so that
      // the snapshots before and after a network compare what virtnet leaves, not what firewalld made.
      await sh(
        HOST,
        "firewall-cmd -q --zone=trusted --add-interface=vnwarm && firewall-cmd -q --zone=trusted --remove-interface=vnwarm",
      );
    });
    after(async () => {
      h = await hostReboot(HOST);
    });

    const IPTABLES_DRIFT = [
      "apply firewall: iptables filter",
      "apply firewall: iptables nat",
      "apply firewall: ip6tables filter",
    ];

    /** What a guest gets on the network: a DHCP lease, an answer from the network's DNS, a way out. */
    async function guestGets(guest: string, subnet: string) {
      const lease = await guestDhcp(guest, { timeoutMs: 6000 }).then(
        (l) => l.ip,
        () => null,
      );
      if (!lease) await guestAddr(guest, `${subnet}.50/24`, `${subnet}.1`);
      const dns = await guestExec(guest, ["busybox", "nslookup", "db", `${subnet}.1`]);
      return { dhcp: lease !== null, dns: dns.stdout.includes(`${subnet}.10`), forward: await ping(guest) };
    }

    BACKENDS.forEach((b, bi) => {
      const subnet = `10.246.${bi}`;
      const name = `fwz${bi}`;
      const guest = `fz${bi}`;
      const args = (zone?: string): VirtualNetworkArgs => ({
        mode: "nat",
        ipv4: { cidr: `${subnet}.0/24` },
        dns: { hosts: [{ ip: `${subnet}.10`, hostnames: ["db"] }] },
        ...(zone ? { bridge: { zone } } : {}),
        ...(b.firewallBackend ? { firewallBackend: b.firewallBackend } : {}),
      });
      const range = { start: `${subnet}.100`, end: `${subnet}.120` };

      it(`${b.label}: with bridge.zone, guests get DHCP, DNS and a way out; a reload's loss shows in drift and up restores it`, async () => {
        const before = await snapshot(HOST);
        const stack = stackFor(h);
        try {
          const r = await stack.up(program(name, args("trusted"), range));
          const outs = findOp(r, name)!.outputs!;
          expect(outs.warnings).to.deep.equal([]);
          const bridge = outs.bridgeName as string;
          const zoneOf = `firewall-cmd --get-zone-of-interface=${bridge} 2>&1 || :`;
          expect(await sh(HOST, zoneOf)).to.equal("trusted\n");
          await guestAdd(guest, HOST, bridge);
          expect(await guestGets(guest, subnet)).to.deep.equal({ dhcp: true, dns: true, forward: true });

          await sh(HOST, "firewall-cmd --reload"); // runtime configuration is lost: the bridge is in no zone
          expect(await sh(HOST, zoneOf)).to.equal("no zone\n");
          expect(await ping(guest)).to.equal(false);
          await stack.refresh();
          // firewalld keeps other nft tables, so an nftables network loses only its zone binding; on reload
          // firewalld flushes every iptables table (they also hold its direct rules), with the network's chains.
          const lost = b.expected === "nftables" ? [] : IPTABLES_DRIFT;
          expect(findResource(stack.state, name)!.outputs.drift).to.deep.equal([
            ...lost,
            "put bridge in firewalld zone trusted",
          ]);
          expect(await kernelRules(HOST, outs)).to.deep.equal(
            b.expected === "nftables" ? renderedRules(outs) : {},
          );
          await stack.up(program(name, args("trusted"), range));
          expect(await sh(HOST, zoneOf)).to.equal("trusted\n");
          expect(await kernelRules(HOST, outs)).to.deep.equal(renderedRules(outs));
          expect(await ping(guest)).to.equal(true);
          await stack.refresh();
          expect(findResource(stack.state, name)!.outputs.drift).to.deep.equal([]);
        } finally {
          await guestDel(guest);
          await stack.destroy();
        }
        expect(await snapshot(HOST)).to.equal(before); // the bridge is out of the zone again
      });

      it(`${b.label}: without bridge.zone, create warns and the guest gets neither DHCP, DNS nor a way out until the fix`, async () => {
        const before = await snapshot(HOST);
        const stack = stackFor(h);
        try {
          const r = await stack.up(program(name, args(), range));
          const outs = findOp(r, name)!.outputs!;
          const bridge = outs.bridgeName as string;
          const warning = (outs.warnings as string[]).join("\n");
          expect(warning).to.include('firewalld is active on this host (nft table "inet firewalld")');
          expect(warning).to.include(`firewall-cmd --zone=trusted --add-interface=${bridge}`);
          await guestAdd(guest, HOST, bridge);
          // The bridge falls in the default zone, public: it rejects DHCP and DNS to the host, and forwarding.
          expect(await guestGets(guest, subnet)).to.deep.equal({ dhcp: false, dns: false, forward: false });
          await sh(HOST, `firewall-cmd --zone=trusted --add-interface=${bridge}`); // the fix the warning gives
          await guestDel(guest);
          await guestAdd(guest, HOST, bridge);
          expect(await guestGets(guest, subnet)).to.deep.equal({ dhcp: true, dns: true, forward: true });
          await sh(HOST, `firewall-cmd --zone=trusted --remove-interface=${bridge}`);
        } finally {
          await guestDel(guest);
          await stack.destroy();
        }
        expect(await snapshot(HOST)).to.equal(before);
      });
    });
  });

  describe("bridge.zone where firewalld does not run", () => {
    it("fails at create before any change, saying firewalld is not running", async () => {
      const h1 = plainHost(); // firewall-cmd is installed; no firewalld (nor a system bus) runs
      const before = await snapshot(h1.name);
      const stack = stackFor(h1);
      const err: DeploymentError = await stack
        .up(
          program("fwnozone", { mode: "nat", ipv4: { cidr: "10.247.0.0/24" }, bridge: { zone: "trusted" } }),
        )
        .then(
          () => expect.fail("up should fail"),
          (e) => e,
        );
      expect(err.message).to.match(
        /bridge\.zone "trusted" needs firewalld, which is not running on this host/,
      );
      expect(err.message).to.include(h1.address);
      expect(await snapshot(h1.name)).to.equal(before);
      await stack.destroy();
    });
  });
});
