// Reboot and restart: networks come back at boot exactly as last applied; a dead dnsmasq is repaired; a stale
// pid file never gets an unrelated process killed; the boot unit is installed and removed with the networks.
import { expect } from "chai";
import { networkPaths } from "../../provider/naming";
import { DhcpRange, StaticRoute, VirtualNetwork } from "../../sdk";
import { findResource, TestStack } from "../engine/engine";
import { guestAdd, guestDel, guestDhcp, hostExec, hostReboot, LabHost } from "../lab/lab";
import { labHosts, nftChainsOf, sh, stackFor } from "./support";

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

describe("reboot and restart, through the engine path", function () {
  this.timeout(120_000);
  let h1: LabHost;
  let stack: TestStack;

  before(async () => {
    [h1] = await labHosts(2);
    stack = stackFor(h1);
    await stack.up(program);
  });
  after(async () => {
    await guestDel("rbg");
    await stack.destroy();
    expect(await sh("h1", "ls /var/lib/virtnet 2>/dev/null || true")).to.equal("");
  });

  it("brings every autostart network, its ranges and its routes back after a reboot; refresh sees no drift", async () => {
    const mac = { mac: "52:54:00:aa:24:01" }; // the same guest, as after a VM's reboot
    await guestAdd("rbg", "h1", "vn-rb", mac);
    const first = await guestDhcp("rbg", { timeoutMs: 15000 });
    await guestDel("rbg");

    h1 = await hostReboot("h1");
    expect((await hostExec("h1", ["ip", "link", "show", "dev", "vn-rb"])).code).to.not.equal(0);

    const r = await hostExec("h1", ["sh", "/var/lib/virtnet/restore"]);
    expect(r.code, r.stderr).to.equal(0);
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

  it("installs an enabled boot unit where systemd runs, and removes it with the last network", async () => {
    await sh("h1", "mkdir -p /run/systemd/system"); // what a host booted with systemd has
    try {
      const other = stackFor(h1);
      await other.up(() => {
        new VirtualNetwork("rbs", { mode: "isolated", ipv4: { cidr: "10.244.0.0/24" } });
        return {};
      });
      expect(await sh("h1", "cat /etc/systemd/system/virtnet-restore.service")).to.include(
        "ExecStart=/bin/sh /var/lib/virtnet/restore",
      );
      expect(
        await sh("h1", "readlink /etc/systemd/system/multi-user.target.wants/virtnet-restore.service"),
      ).to.equal("/etc/systemd/system/virtnet-restore.service\n");
      await other.destroy(); // "rb" is still there: the unit stays
      expect(
        (await hostExec("h1", ["test", "-e", "/etc/systemd/system/virtnet-restore.service"])).code,
      ).to.equal(0);
      await stack.destroy(); // the last network: everything goes
      const left = await hostExec("h1", [
        "sh",
        "-c",
        "ls /etc/systemd/system/virtnet-restore.service /etc/systemd/system/multi-user.target.wants/virtnet-restore.service /var/lib/virtnet 2>&1",
      ]);
      expect(left.stdout).to.not.match(/^\/etc|^\/var/m);
      await stack.up(program); // back, so `after` has something to destroy
    } finally {
      await sh("h1", "rmdir /run/systemd/system /run/systemd");
    }
  });
});
