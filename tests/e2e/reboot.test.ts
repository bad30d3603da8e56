// Reboot and restart: networks come back at boot exactly as last applied, brought back by virtnet's unit that
// systemd runs (the lab host boots systemd: a reboot is `systemctl reboot` and a real boot); a dead dnsmasq is
// repaired; a stale pid file never gets an unrelated process killed; the unit goes with the last network.
import { expect } from "chai";
import { networkPaths } from "../../provider/naming";
import { DhcpRange, StaticRoute, VirtualNetwork } from "../../sdk";
import { findResource, TestStack } from "../engine/engine";
import {
  guestAdd,
  guestAddr,
  guestDel,
  guestDhcp,
  guestExec,
  hostExec,
  hostReboot,
  LabHost,
} from "../lab/lab";
import { labHosts, nftChainsOf, sh, stackFor } from "./support";

const UNIT = "virtnet-restore.service";

function program() {
  const net = new VirtualNetwork("rb", { mode: "nat", ipv4: { cidr: "10.241.0.0/24" } });
  new DhcpRange("rbpool", { network: net, start: "10.241.0.100", end: "10.241.0.120" });
  new StaticRoute("rbroute", { network: net, destination: "10.242.0.0/16", gateway: "10.241.0.254" });
  new VirtualNetwork("rbt", { mode: "isolated", ipv4: { cidr: "10.243.0.0/24" }, autostart: false });
  return {};
}

async function alive(pid: string): Promise<boolean> {
  return (await hostExec("h1", ["kill", "-0", pid])).code === 0;
}

/** systemctl show's properties of a unit, as an object. */
async function unitProps(unit: string, ...props: string[]): Promise<Record<string, string>> {
  const out = await sh("h1", `systemctl show ${unit} ${props.map((p) => `-p ${p}`).join(" ")}`);
  return Object.fromEntries(
    out
      .trim()
      .split("\n")
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

/** When a unit started and when it was up, in µs since this boot (CLOCK_MONOTONIC). */
async function timesOf(unit: string): Promise<{ start: number; up: number }> {
  const p = await unitProps(unit, "InactiveExitTimestampMonotonic", "ActiveEnterTimestampMonotonic");
  return { start: Number(p.InactiveExitTimestampMonotonic), up: Number(p.ActiveEnterTimestampMonotonic) };
}

describe("reboot and restart, through the engine path, on a host that boots systemd", function () {
  this.timeout(120_000);
  let h1: LabHost;
  let stack: TestStack;

  before(async () => {
    await labHosts(2);
    h1 = await hostReboot("h1", { init: "systemd" });
    stack = stackFor(h1);
    await stack.up(program);
  });
  after(async () => {
    await guestDel("rbg");
    await stack.destroy();
    expect(await sh("h1", "ls /var/lib/virtnet 2>/dev/null || true")).to.equal("");
    await hostReboot("h1", { init: "sshd" });
  });

  it("installs an enabled boot unit that systemd-analyze verify accepts, ordered before network.target", async () => {
    expect(await sh("h1", `cat /etc/systemd/system/${UNIT}`)).to.include(
      "ExecStart=/bin/sh /var/lib/virtnet/restore",
    );
    expect(await sh("h1", `systemctl is-enabled ${UNIT}`)).to.equal("enabled\n");
    const verify = await hostExec("h1", ["systemd-analyze", "verify", `/etc/systemd/system/${UNIT}`]);
    expect(verify.code, verify.stderr).to.equal(0);
    expect(verify.stdout + verify.stderr).to.equal("");
    const deps = await unitProps(UNIT, "After", "Before");
    expect(deps.After.split(" ")).to.include("network-pre.target");
    expect(deps.Before.split(" ")).to.include("network.target");
  });

  it("brings every autostart network, its ranges and its routes back at boot, by systemd; refresh sees no drift", async () => {
    const mac = { mac: "52:54:00:aa:24:01" }; // the same guest, as after a VM's reboot
    await guestAdd("rbg", "h1", "vn-rb", mac);
    const first = await guestDhcp("rbg", { timeoutMs: 15000 });
    await guestDel("rbg");

    const bootBefore = await sh("h1", "cat /proc/sys/kernel/random/boot_id");
    h1 = await hostReboot("h1"); // systemctl reboot, then a boot: nothing of this test runs the restore
    expect(await sh("h1", "cat /proc/sys/kernel/random/boot_id")).to.not.equal(bootBefore);
    expect(await unitProps(UNIT, "ActiveState", "Result", "ExecMainStatus")).to.deep.equal({
      ActiveState: "active",
      Result: "success",
      ExecMainStatus: "0",
    });
    // At this boot: after network-pre.target, done before network.target (and so before ssh.service).
    const [pre, restore, network, ssh] = await Promise.all(
      ["network-pre.target", UNIT, "network.target", "ssh.service"].map(timesOf),
    );
    expect(restore.start).to.be.at.least(pre.up);
    expect(restore.up).to.be.at.most(network.up);
    expect(restore.up).to.be.at.most(ssh.start);

    const outs = findResource(stack.state, "rb")!.outputs;
    expect(await nftChainsOf("h1", outs.name)).to.equal(outs.rendered.nftables);
    expect(await sh("h1", "ip route show 10.242.0.0/16")).to.match(/via 10\.241\.0\.254 dev vn-rb proto 242/);
    expect(
      (await hostExec("h1", ["ip", "link", "show", "dev", "vn-rbt"])).code,
      "transient network",
    ).to.not.equal(0);
    expect(
      (await hostExec("h1", ["test", "-e", "/var/lib/virtnet/networks/rbt"])).code,
      "transient state",
    ).to.not.equal(0);

    await guestAdd("rbg", "h1", "vn-rb", mac);
    const again = await guestDhcp("rbg", { timeoutMs: 15000 });
    expect(again.ip).to.equal(first.ip); // the lease file survived the reboot

    const refreshed = await stack.refresh();
    // No drift: nothing to repair and no input changed. The network's libvirtXml output may pick up the
    // range and route created after it (an output derived from other resources, not drift).
    const byName = Object.fromEntries(refreshed.changes.map((c) => [c.urn.split("::").pop(), c]));
    expect(byName.rbt.op).to.equal("delete");
    for (const name of ["rb", "rbpool", "rbroute"]) {
      const c = byName[name];
      expect(
        c.changedKeys.filter((k: string) => k !== "libvirtXml"),
        name,
      ).to.deep.equal([]);
      expect(JSON.stringify(c.inputsAfter ?? c.inputsBefore), name).to.equal(JSON.stringify(c.inputsBefore));
    }
    expect(findResource(stack.state, "rb")!.outputs.drift).to.deep.equal([]);
    expect(findResource(stack.state, "rbroute")!.outputs.drift).to.deep.equal([]);
    await guestDel("rbg");
    await stack.up(program); // "rbt" back, as the program has it
  });

  it("with Docker enabled, brings a nat network back before Docker's FORWARD DROP, and its guest gets out", async () => {
    await sh("h1", "systemctl enable --now docker.service");
    try {
      await stack.refresh(); // Docker is there now: the network needs its accepts in DOCKER-USER
      expect(findResource(stack.state, "rb")!.outputs.drift).to.deep.equal([
        "accept bridge in iptables DOCKER-USER",
        "write /var/lib/virtnet/networks/rb/restore.sh", // which makes DOCKER-USER at boot, before Docker
      ]);
      await stack.up(program);
      expect(await sh("h1", "cat /var/lib/virtnet/networks/rb/restore.sh")).to.include("DOCKER-USER");
      h1 = await hostReboot("h1");
      // hostReboot returns once sshd answers; Docker writes its chains before it reports ready, so wait for that.
      await sh(
        "h1",
        "timeout 60 sh -c 'until systemctl is-active --quiet docker.service; do sleep 0.2; done'",
      );
      // docker.service wants network-online.target, which networking.service reaches: virtnet was done before.
      const [restore, online, docker] = await Promise.all(
        [UNIT, "network-online.target", "docker.service"].map(timesOf),
      );
      expect(restore.up).to.be.at.most(online.up);
      expect(online.up).to.be.at.most(docker.start);
      // Docker kept the DOCKER-USER the restore made, with the accepts, and jumps to it. Where the jump sits
      // among Docker's own (before or after DOCKER-ISOLATION-STAGE-1) varies from boot to boot here; the
      // guest's way out below is what shows the order works.
      expect((await sh("h1", "iptables -S FORWARD")).split("\n")).to.include("-A FORWARD -j DOCKER-USER");
      const comment = '-m comment --comment "virtnet: network rb" -j ACCEPT';
      expect(await sh("h1", "iptables -S DOCKER-USER")).to.include(`-i vn-rb ${comment}`);
      // Docker 20.10 sets FORWARD's policy to DROP only when it turns forwarding on itself, which depends on
      // whether the restore turned it on first; seen both ways here. Set it as Docker does: the accepts let
      // the guest out all the same.
      await sh("h1", "iptables -P FORWARD DROP");
      await guestAdd("rbg", "h1", "vn-rb");
      await guestAddr("rbg", "10.241.0.50/24", "10.241.0.1");
      expect(
        (await guestExec("rbg", ["busybox", "ping", "-c", "1", "-W", "2", "198.51.100.1"])).code,
      ).to.equal(0);
      await stack.refresh();
      expect(findResource(stack.state, "rb")!.outputs.drift).to.deep.equal([]);
    } finally {
      await guestDel("rbg");
      await sh("h1", "systemctl disable --now docker.service docker.socket containerd.service");
    }
  });

  it("restarts a dnsmasq that died, and never kills an unrelated process a stale pid file points at", async () => {
    const pidFile = networkPaths("rb").dnsmasqPid;
    const bystander = (await sh("h1", "sleep 600 >/dev/null 2>&1 & echo $!")).trim();
    await sh("h1", `kill $(cat ${pidFile}); sleep 0.2; echo ${bystander} > ${pidFile}`);
    await stack.refresh();
    expect(findResource(stack.state, "rb")!.outputs.drift).to.include("start dnsmasq");
    await stack.up(program);
    const pid = (await sh("h1", `cat ${pidFile}`)).trim();
    expect(pid).to.not.equal(bystander);
    expect(await sh("h1", `readlink /proc/${pid}/exe`)).to.match(/dnsmasq/);
    expect(await alive(bystander)).to.equal(true);
    await sh("h1", `kill ${bystander}`);
  });

  it("keeps the boot unit while a network is left, and removes it with the last network", async () => {
    const other = stackFor(h1);
    await other.up(() => {
      new VirtualNetwork("rbs", { mode: "isolated", ipv4: { cidr: "10.244.0.0/24" } });
      return {};
    });
    await other.destroy(); // "rb" is still there: the unit stays
    expect(await sh("h1", `systemctl is-enabled ${UNIT}`)).to.equal("enabled\n");
    await stack.destroy(); // the last network: everything goes
    const left = await hostExec("h1", [
      "sh",
      "-c",
      `ls /etc/systemd/system/${UNIT} /etc/systemd/system/multi-user.target.wants/${UNIT} /var/lib/virtnet 2>&1`,
    ]);
    expect(left.stdout).to.not.match(/^\/etc|^\/var/m);
    // systemd ran the unit at the boots above, so it had it loaded: it rereads its units and lets it go.
    expect(await unitProps(UNIT, "LoadState")).to.deep.equal({ LoadState: "not-found" });
    await stack.up(program); // back, so `after` has something to destroy
    expect(await unitProps(UNIT, "LoadState", "NeedDaemonReload")).to.deep.equal({
      LoadState: "loaded",
      NeedDaemonReload: "no",
    });
  });
});
