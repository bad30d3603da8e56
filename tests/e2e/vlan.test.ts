// VLANs end to end, through the engine path. The machine's kernel has neither VLAN-aware bridges nor 802.1Q
// (CONFIG_BRIDGE_VLAN_FILTERING and CONFIG_VLAN_8021Q are off), so these hosts are VMs with Debian's kernel
// (tests/support/vmHost.ts): the machine's own programs over 9p, virtnet over SSH as on any host. Guests
// are namespaces inside a host, behind a Port's TAP (wired as a VM's NIC is) or on a bridge.
import { expect } from "chai";
import { DhcpRange, getFdb, NetworkExtension, Port, PortArgs, VirtualNetwork } from "../../sdk";
import { DeploymentError, findOp, findResource, TestStack } from "../engine/engine";
import {
  startVmHosts,
  VmHost,
  vmGuestAdd,
  vmGuestDel,
  vmGuestDhcp,
  vmGuestExec,
  vmGuestPing,
  vmHostSnapshot,
  vmTapGuestAdd,
} from "../support/vmHost";
import { projectDir } from "./support";

type Ports = Record<string, Omit<PortArgs, "network">>;

async function ifindex(h: VmHost, dev: string): Promise<number> {
  return JSON.parse(await h.sh(`ip -j link show dev ${dev}`))[0].ifindex;
}

describe("VLANs on a VLAN-aware network, on a host VM, through the engine path", function () {
  this.timeout(600_000);
  let h: VmHost;
  let stack: TestStack;
  let empty: string;
  const ports: Ports = {
    va1: { vlan: 10 },
    va2: { vlan: 10 },
    vb: { vlan: 20 },
    vc: { vlan: 30 },
    vt: { vlan: { tagged: [10, 20] } },
  };
  const program =
    (p: Ports, opts: { fdb?: boolean } = {}) =>
    () => {
      const net = new VirtualNetwork("vlnet", {
        connection: h.connection,
        mode: "open",
        ipv4: { cidr: "10.95.0.0/24" },
        bridge: { vlanFiltering: true },
      });
      const outs: Record<string, unknown> = {};
      for (const [name, args] of Object.entries(p))
        outs[name] = new Port(name, { network: net, ...args }).name;
      if (opts.fdb) outs.fdb = getFdb({ network: net });
      return outs;
    };

  before(async () => {
    [h] = await startVmHosts(["vh1"]);
    stack = new TestStack({ cwd: projectDir() });
    empty = await vmHostSnapshot(h);
    await stack.up(program(ports));
    // Guests in one subnet of their own: only the VLANs keep them apart.
    const guests: [string, string, number][] = [
      ["ga1", "vt-va1", 1],
      ["ga2", "vt-va2", 2],
      ["gb", "vt-vb", 3],
      ["gc", "vt-vc", 4],
      ["gt", "vt-vt", 5],
    ];
    for (const [g, tap, i] of guests) await vmTapGuestAdd(h, g, tap, `10.96.0.${i}/24`);
  });
  after(async () => {
    if (h) await h.stop();
  });

  it("gives each port its VLANs, as bridge vlan lists them", async () => {
    const vlans = JSON.parse(await h.sh("bridge -j vlan show"));
    const of = (dev: string) => vlans.find((v: any) => v.ifname === dev)?.vlans;
    expect(of("vt-va1")).to.deep.equal([{ vlan: 10, flags: ["PVID", "Egress Untagged"] }]);
    expect(of("vt-vt")).to.deep.equal([{ vlan: 10 }, { vlan: 20 }]);
    expect(of("vn-vlnet")).to.deep.equal([{ vlan: 1, flags: ["PVID", "Egress Untagged"] }]);
  });

  it("lets two access ports of VLAN 10 reach each other, and a port of VLAN 20 neither", async () => {
    expect(await vmGuestPing(h, "ga1", "10.96.0.2"), "VLAN 10 to VLAN 10").to.equal(true);
    expect(await vmGuestPing(h, "gb", "10.96.0.1"), "VLAN 20 to VLAN 10").to.equal(false);
    expect(await vmGuestPing(h, "gb", "10.96.0.2"), "VLAN 20 to VLAN 10").to.equal(false);
    expect(await vmGuestPing(h, "ga1", "10.95.0.1"), "VLAN 10 to the bridge's own address (VLAN 1)").to.equal(
      false,
    );
  });

  it("shows a trunk port tagged frames of its VLANs only (tcpdump -e)", async () => {
    const capture = vmGuestExec(h, "gt", "timeout 25 tcpdump -e -n -l -i eth0 arp 2>/dev/null");
    await new Promise((r) => setTimeout(r, 6000)); // tcpdump starts slowly under TCG
    // ARP requests for addresses nobody has: broadcasts in each guest's VLAN.
    for (const g of ["ga1", "gb", "gc"]) await vmGuestPing(h, g, "10.96.0.99");
    const seen = (await capture).stdout;
    const mac = async (g: string) =>
      JSON.parse((await vmGuestExec(h, g, "ip -j link show dev eth0")).stdout)[0].address as string;
    expect(seen).to.match(
      new RegExp(
        `${await mac("ga1")} > ff:ff:ff:ff:ff:ff, ethertype 802\\.1Q \\(0x8100\\), length \\d+: vlan 10,`,
      ),
    );
    expect(seen).to.match(
      new RegExp(
        `${await mac("gb")} > ff:ff:ff:ff:ff:ff, ethertype 802\\.1Q \\(0x8100\\), length \\d+: vlan 20,`,
      ),
    );
    expect(seen, "VLAN 30 is not on the trunk").to.not.include(await mac("gc"));
    expect(seen).to.not.match(/vlan 30/);
    // And the trunk's guest reaches VLAN 10 on an 802.1Q sub-interface of its own.
    await vmGuestExec(
      h,
      "gt",
      "ip link add link eth0 name eth0.10 type vlan id 10 && ip addr add 10.96.10.5/24 dev eth0.10 && ip link set eth0.10 up",
    );
    await vmGuestExec(h, "ga2", "ip addr add 10.96.10.2/24 dev eth0");
    expect(await vmGuestPing(h, "gt", "10.96.10.2"), "trunk, tagged 10, to VLAN 10").to.equal(true);
  });

  it("lists what the bridge learned with its VLAN (getFdb), and each port's VLANs", async () => {
    await vmGuestPing(h, "ga1", "10.96.0.2");
    const fdb = (await stack.up(program(ports, { fdb: true }))).outputs.fdb as {
      entries: any[];
      ports: any[];
    };
    const mac = JSON.parse((await vmGuestExec(h, "ga1", "ip -j link show dev eth0")).stdout)[0].address;
    expect(fdb.entries).to.deep.include({ mac, port: "vt-va1", vlan: 10, kind: "learned" });
    expect(fdb.ports.find((p) => p.name === "vt-vt")).to.deep.equal({
      name: "vt-vt",
      state: "forwarding",
      isolated: false,
      vlans: [
        { id: 10, pvid: false, untagged: false },
        { id: 20, pvid: false, untagged: false },
      ],
    });
  });

  it("moves a Port to another VLAN in place while its guest is attached: same ifindex, traffic follows", async () => {
    const before = await ifindex(h, "vt-vb");
    const r = await stack.up(program({ ...ports, vb: { vlan: 10 } }));
    expect(findOp(r, "vb")!.op).to.equal("update");
    expect(await ifindex(h, "vt-vb")).to.equal(before);
    expect(await vmGuestPing(h, "gb", "10.96.0.1"), "now in VLAN 10").to.equal(true);
    await stack.up(program(ports));
    expect(await vmGuestPing(h, "gb", "10.96.0.1"), "back in VLAN 20").to.equal(false);
  });

  it("reports VLANs changed by hand on refresh, and up puts them back", async () => {
    await h.sh("bridge vlan add dev vt-va1 vid 11 pvid untagged && bridge vlan del dev vt-va1 vid 10");
    await stack.refresh();
    expect(findResource(stack.state, "va1")!.outputs.drift).to.deep.equal([
      "set VLANs of vt-va1: 10 pvid untagged (it has 11 pvid untagged)",
    ]);
    await stack.up(program(ports));
    expect(await vmGuestPing(h, "ga1", "10.96.0.2")).to.equal(true);
  });

  it("refuses a VLAN on a network that is not VLAN-aware, at check", async () => {
    const err: DeploymentError = await stack
      .up(() => {
        const net = new VirtualNetwork("vlplain", { connection: h.connection, mode: "open" });
        new Port("vp", { network: net, vlan: 10 });
        return {};
      })
      .then(
        () => expect.fail("up should fail"),
        (e) => e,
      );
    expect(findOp(err.result, "vp")!.failures).to.deep.equal([
      {
        property: "vlan",
        reason: 'network "vlplain" is not VLAN-aware: set bridge.vlanFiltering on it to give its ports VLANs',
      },
    ]);
    await stack.up(program(ports));
  });

  it("brings the ports and their VLANs back from the boot-time restore", async () => {
    for (const g of ["ga1", "ga2", "gb", "gc", "gt"]) await vmGuestDel(h, g);
    const vlans = await h.sh("bridge vlan show");
    await h.sh("for l in vt-va1 vt-va2 vt-vb vt-vc vt-vt vn-vlnet; do ip link del dev $l; done");
    await h.sh("sh /var/lib/virtnet/restore");
    expect(await h.sh("bridge vlan show")).to.equal(vlans);
    await stack.refresh();
    for (const name of Object.keys(ports))
      expect(findResource(stack.state, name)!.outputs.drift, name).to.deep.equal([]);
  });

  it("leaves links, bridge VLANs, the FDB and files as before", async () => {
    await stack.destroy();
    expect(await vmHostSnapshot(h)).to.equal(empty);
  });
});

describe("VLANs across hosts on a trunk, on two host VMs, through the engine path", function () {
  this.timeout(600_000);
  let h1: VmHost;
  let h2: VmHost;
  let stack: TestStack;
  let empty: string[];
  before(async () => {
    [h1, h2] = await startVmHosts(["vh1", "vh2"], { trunk: true });
    stack = new TestStack({ cwd: projectDir() });
    empty = await Promise.all([vmHostSnapshot(h1), vmHostSnapshot(h2)]);
  });
  after(async () => {
    await Promise.all([h1?.stop(), h2?.stop()]);
  });

  it("refuses an uplink the host does not have, changing nothing", async () => {
    const err: DeploymentError = await stack
      .up(() => {
        new VirtualNetwork("lanx", {
          connection: h1.connection,
          mode: "open",
          vlan: { id: 10, uplink: "eth9" },
        });
        return {};
      })
      .then(
        () => expect.fail("up should fail"),
        (e) => e,
      );
    expect(err.message).to.include("vlan.uplink eth9 does not exist on the host");
    expect(await vmHostSnapshot(h1)).to.equal(empty[0]);
  });

  it("joins the same VLAN on two hosts into one LAN, keeps VLAN 20 apart, and tags both on the trunk", async () => {
    await stack.up(() => {
      const a10 = new VirtualNetwork("lan10a", {
        connection: h1.connection,
        name: "lan10",
        mode: "open",
        ipv4: { cidr: "10.97.0.0/24" },
        vlan: { id: 10, uplink: "eth1" },
      });
      new DhcpRange("lan10pool", { network: a10, start: "10.97.0.100", end: "10.97.0.150" });
      new VirtualNetwork("lan20a", {
        connection: h1.connection,
        name: "lan20",
        mode: "open",
        vlan: { id: 20, uplink: "eth1" },
      });
      new VirtualNetwork("lan10b", {
        connection: h2.connection,
        name: "lan10",
        mode: "open",
        vlan: { id: 10, uplink: "eth1" },
      });
      new VirtualNetwork("lan20b", {
        connection: h2.connection,
        name: "lan20",
        mode: "open",
        vlan: { id: 20, uplink: "eth1" },
      });
      return {};
    });
    const link = await h2.sh("ip -d -o link show dev eth1.10");
    expect(link)
      .to.match(/master vn-lan10 /)
      .and.to.match(/vlan protocol 802\.1Q id 10 /);
    await vmGuestAdd(h2, "g10", "vn-lan10");
    await vmGuestAdd(h2, "g20", "vn-lan20");
    const capture = h1.exec("timeout 40 tcpdump -e -n -l -i eth1 'vlan and udp port 67' 2>/dev/null");
    await new Promise((r) => setTimeout(r, 6000));
    const lease = await vmGuestDhcp(h2, "g10");
    expect(lease, "a lease on host 2 from host 1's dnsmasq, over VLAN 10").to.match(/^10\.97\.0\.1\d\d$/);
    expect(await vmGuestPing(h2, "g10", "10.97.0.1")).to.equal(true);
    expect(await vmGuestDhcp(h2, "g20", 3), "no DHCP on VLAN 20").to.equal(null);
    await vmGuestExec(h2, "g20", "ip addr add 10.97.0.77/24 dev eth0");
    expect(await vmGuestPing(h2, "g20", "10.97.0.1"), "VLAN 20 apart from VLAN 10").to.equal(false);
    const seen = (await capture).stdout;
    expect(seen).to.match(/ethertype 802\.1Q \(0x8100\), length \d+: vlan 10,/);
    expect(seen).to.match(/ethertype 802\.1Q \(0x8100\), length \d+: vlan 20,/);
  });

  it("removes the sub-interfaces with the networks: both hosts as before", async () => {
    await vmGuestDel(h2, "g10");
    await vmGuestDel(h2, "g20");
    await stack.destroy();
    expect(await vmHostSnapshot(h1)).to.equal(empty[0]);
    expect(await vmHostSnapshot(h2)).to.equal(empty[1]);
  });
});

describe("A VLAN-aware network stretched over VXLAN to a second host VM, through the engine path", function () {
  this.timeout(600_000);
  let h1: VmHost;
  let h2: VmHost;
  let stack: TestStack;
  let empty: string[];
  const guests: [VmHost, string][] = [];

  before(async () => {
    // The trunk segment between the two VMs is the underlay: an address on each one's eth1.
    [h1, h2] = await startVmHosts(["vh1", "vh2"], { trunk: true });
    await h1.sh("ip addr add 192.0.2.1/24 dev eth1 && ip link set eth1 up");
    await h2.sh("ip addr add 192.0.2.2/24 dev eth1 && ip link set eth1 up");
    stack = new TestStack({ cwd: projectDir() });
    empty = await Promise.all([vmHostSnapshot(h1), vmHostSnapshot(h2)]);
  });
  after(async () => {
    await Promise.all([h1?.stop(), h2?.stop()]);
  });

  it("joins VLAN 10 on both hosts through the segment, keeps VLAN 20 apart, and leaves both hosts as before", async () => {
    const r = await stack.up(() => {
      const net = new VirtualNetwork("vxv", {
        connection: h1.connection,
        mode: "open",
        ipv4: { cidr: "10.98.0.0/24" },
        bridge: { vlanFiltering: true },
      });
      const ext = new NetworkExtension("vxv-h2", {
        network: net,
        connection: h2.connection,
        localAddress: "192.0.2.2",
      });
      new Port("p10a", { network: net, vlan: 10 });
      new Port("p10b", { network: ext, vlan: 10 });
      new Port("p20b", { network: ext, vlan: 20 });
      return { mtu: ext.mtu };
    });
    expect(r.outputs.mtu).to.equal(1450);
    expect(await h2.sh("ip -d -j link show dev vn-vxv")).to.include('"vlan_filtering":1');
    for (const h of [h1, h2])
      expect(
        JSON.parse(await h.sh("bridge -j -compressvlans vlan show dev vx-vxv"))[0].vlans,
        h.name,
      ).to.deep.equal([
        { vlan: 1, flags: ["PVID", "Egress Untagged"] },
        { vlan: 2, vlanEnd: 4094, flags: [] },
      ]);
    await stack.refresh();
    for (const name of ["vxv", "vxv-h2", "p10a", "p10b", "p20b"])
      expect(findResource(stack.state, name)!.outputs.drift, name).to.deep.equal([]);
    const add = async (h: VmHost, guest: string, tap: string, cidr: string) => {
      guests.push([h, guest]);
      await vmTapGuestAdd(h, guest, tap, cidr);
    };
    await add(h1, "ga", "vt-p10a", "10.98.0.11/24");
    await add(h2, "gb", "vt-p10b", "10.98.0.12/24");
    await add(h2, "gc", "vt-p20b", "10.98.0.13/24");
    expect(await vmGuestPing(h1, "ga", "10.98.0.12"), "VLAN 10 on h1 to VLAN 10 on h2").to.equal(true);
    expect(await vmGuestPing(h1, "ga", "10.98.0.13"), "VLAN 10 to VLAN 20").to.equal(false);
    for (const [h, g] of guests.splice(0)) await vmGuestDel(h, g);
    await stack.destroy();
    expect(await vmHostSnapshot(h1)).to.equal(empty[0]);
    expect(await vmHostSnapshot(h2)).to.equal(empty[1]);
  });
});
