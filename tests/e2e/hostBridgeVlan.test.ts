// A VLAN-aware HostBridge, through the engine path, on a host VM (the machine's kernel has no VLAN-aware
// bridges: tests/support/vmHost.ts). The uplink it moves is the host's eth0, the very link its SSH rides on;
// QEMU records every frame on that link's far side (uplinkCapture), where tcpdump reads the VLAN tags that
// leave the host. Guests are namespaces behind the Ports' TAPs, wired as a VM's NIC is.
import { expect } from "chai";
import { connectFresh } from "../../provider/host";
import { HostBridge, Port, PortArgs, VirtualNetwork } from "../../sdk";
import { findOp, findResource, TestStack } from "../engine/engine";
import {
  startVmHosts,
  VmHost,
  vmGuestDel,
  vmGuestExec,
  vmGuestPing,
  vmHostSnapshot,
  vmTapGuestAdd,
} from "../support/vmHost";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { projectDir } from "./support";

const run = promisify(execFile);
const BR = "br0";
type Ports = Record<string, Omit<PortArgs, "network">>;

/** The uplink as the kernel lists it: what a delete must restore exactly. */
function uplinkState(h: VmHost): Promise<string> {
  return h.sh(
    [
      "ip -j addr show dev eth0",
      "ip -j link show dev eth0",
      "ip -4 -j route show table all dev eth0",
      "ip -6 -j route show table all dev eth0",
    ].join("; echo; "),
  );
}

async function macOf(h: VmHost, guest: string): Promise<string> {
  return JSON.parse((await vmGuestExec(h, guest, "ip -j link show dev eth0")).stdout)[0].address;
}

/** What left or reached the host on its uplink, as `tcpdump -e` prints it. */
async function uplinkFrames(h: VmHost, filter: string): Promise<string> {
  return (await run("tcpdump", ["-e", "-n", "-r", h.uplinkCapture!, filter])).stdout;
}

describe("A VLAN-aware HostBridge over a host VM's SSH uplink, through the engine path", function () {
  this.timeout(900_000);
  let h: VmHost;
  let stack: TestStack;
  let initial: string;
  let empty: string;
  const ports: Ports = { p10a: { vlan: 10 }, p10b: { vlan: 10 }, p20: { vlan: 20 } };
  const program = () => () => {
    const lan = new HostBridge("lanbr", {
      connection: h.connection,
      name: BR,
      uplink: "eth0",
      vlanFiltering: true,
      // New SSH connections are slow under TCG.
      confirmTimeout: 90,
    });
    const net = new VirtualNetwork("lannet", {
      connection: h.connection,
      name: "lan",
      mode: "bridge",
      bridge: { name: lan.bridgeName },
    });
    for (const [name, args] of Object.entries(ports)) new Port(name, { network: net, ...args });
    return { addresses: lan.addresses };
  };

  before(async () => {
    [h] = await startVmHosts(["vhb1"], { capture: true });
    // eth0's address is static; QEMU's user network also advertises an IPv6 prefix, whose SLAAC address (with a
    // lifetime) HostBridge refuses to move, as any dynamic address: the host takes no router advertisements.
    await h.sh(
      [
        "sysctl -qw net.ipv6.conf.default.accept_ra=0 net.ipv6.conf.eth0.accept_ra=0",
        "ip -6 addr flush dev eth0 scope site",
        "ip -6 route flush dev eth0 proto ra",
      ].join(" && "),
    );
    // And the prefix routes the advertisements made (the kernel's, with a lifetime that counts down).
    for (const r of JSON.parse(await h.sh("ip -6 -j route show dev eth0")))
      if (r.expires !== undefined) await h.sh(`ip -6 route del ${r.dst} dev eth0`);
    stack = new TestStack({ cwd: projectDir() });
    initial = await uplinkState(h);
    empty = await vmHostSnapshot(h);
  });
  after(async () => {
    if (h) await h.stop();
  });

  it("moves the SSH uplink into a VLAN-aware bridge, a trunk with the host's address in VLAN 1; a new SSH connection answers", async () => {
    const r = await stack.up(program());
    expect(r.outputs.addresses).to.deep.equal(["10.0.2.15/24"]);
    const fresh = await connectFresh({ ...h.connection, retries: 2 });
    try {
      const link = JSON.parse((await fresh.runChecked("ip -d -j link show dev br0")).stdout)[0];
      expect(link.linkinfo.info_data.vlan_filtering).to.equal(1);
      const addr = JSON.parse((await fresh.runChecked("ip -j addr show dev br0")).stdout)[0];
      expect(addr.addr_info.map((a: any) => a.local)).to.include("10.0.2.15");
      expect(JSON.parse((await fresh.runChecked("ip -j link show dev eth0")).stdout)[0].master).to.equal(BR);
      const vlans = async (dev: string) =>
        JSON.parse((await fresh.runChecked(`bridge -compressvlans -j vlan show dev ${dev}`)).stdout)[0].vlans;
      expect(await vlans("eth0")).to.deep.equal([
        { vlan: 1, flags: ["PVID", "Egress Untagged"] },
        { vlan: 2, vlanEnd: 4094, flags: [] },
      ]);
      expect(await vlans(BR)).to.deep.equal([{ vlan: 1, flags: ["PVID", "Egress Untagged"] }]);
      expect(await vlans("vt-p10a")).to.deep.equal([{ vlan: 10, flags: ["PVID", "Egress Untagged"] }]);
    } finally {
      await fresh.close();
    }
    await stack.refresh();
    for (const name of ["lanbr", "lannet", ...Object.keys(ports)])
      expect(findResource(stack.state, name)!.outputs.drift, name).to.deep.equal([]);
  });

  it("keeps VLAN 10's ports together and VLAN 20 apart, and sends VLAN 10 out of the uplink tagged", async () => {
    await vmTapGuestAdd(h, "ga", "vt-p10a", "10.96.0.1/24");
    await vmTapGuestAdd(h, "gb", "vt-p10b", "10.96.0.2/24");
    await vmTapGuestAdd(h, "gc", "vt-p20", "10.96.0.3/24");
    expect(await vmGuestPing(h, "ga", "10.96.0.2"), "VLAN 10 to VLAN 10").to.equal(true);
    expect(await vmGuestPing(h, "gc", "10.96.0.1"), "VLAN 20 to VLAN 10").to.equal(false);
    expect(await vmGuestPing(h, "gc", "10.96.0.2"), "VLAN 20 to VLAN 10").to.equal(false);
    // ARP requests for an address nobody has: broadcasts in each guest's VLAN, out of the trunk.
    await vmGuestPing(h, "ga", "10.96.0.99");
    await vmGuestPing(h, "gc", "10.96.0.99");
    const [a, c] = [await macOf(h, "ga"), await macOf(h, "gc")];
    const seen = await uplinkFrames(h, "arp or vlan");
    const tagged = (mac: string, id: number) =>
      new RegExp(`${mac} > ff:ff:ff:ff:ff:ff, ethertype 802\\.1Q \\(0x8100\\), length \\d+: vlan ${id},`);
    expect(seen).to.match(tagged(a, 10));
    expect(seen).to.match(tagged(c, 20));
    const lines = (mac: string) => seen.split("\n").filter((l) => l.includes(`${mac} >`));
    expect(
      lines(a).every((l) => / vlan 10, /.test(l)),
      "ga's frames only in VLAN 10",
    ).to.equal(true);
    expect(
      lines(c).every((l) => / vlan 20, /.test(l)),
      "gc's frames only in VLAN 20",
    ).to.equal(true);
  });

  it("reports VLAN filtering turned off as drift; up turns it on again in place under the guard", async () => {
    const ifindex = async () => JSON.parse(await h.sh(`ip -j link show dev ${BR}`))[0].ifindex;
    const before = await ifindex();
    await h.sh(`ip link set dev ${BR} type bridge vlan_filtering 0`);
    expect(await vmGuestPing(h, "gc", "10.96.0.1"), "one LAN without filtering").to.equal(true);
    await stack.refresh();
    expect(findResource(stack.state, "lanbr")!.outputs.drift).to.deep.equal([
      "turn VLAN filtering on for br0 (it is off), uplink eth0 a trunk of VLANs 2-4094",
    ]);
    const r = await stack.up(program());
    expect(findOp(r, "lanbr")!.op).to.equal("update");
    expect(await ifindex()).to.equal(before);
    expect(await h.sh(`ip -d -j link show dev ${BR}`)).to.include('"vlan_filtering":1');
    expect(await vmGuestPing(h, "gc", "10.96.0.1"), "VLAN 20 apart again").to.equal(false);
    expect(await vmGuestPing(h, "ga", "10.96.0.2"), "VLAN 10 together").to.equal(true);
  });

  it("puts the uplink back exactly on delete: addresses, link and routes as before, no bridge VLANs left", async () => {
    for (const g of ["ga", "gb", "gc"]) await vmGuestDel(h, g);
    await stack.destroy();
    expect(await uplinkState(h)).to.equal(initial);
    expect(await vmHostSnapshot(h)).to.equal(empty);
  });
});
