// One network across three lab hosts (NetworkExtension): a NAT network on h1, its segment stretched over the
// kernel's VXLAN to h2 and h3 by examples/stretched-lab, through the engine path. Guests on every host get
// leases from h1's range and reach each other, h1's DNS and the internet through h1; membership changes
// disturb no one; only members may send into the segment; delete leaves every host as it was.
import { spawn } from "node:child_process";
import * as path from "node:path";
import { expect } from "chai";
import { connect } from "../../provider/host";
import { extensionPaths, nftSegmentChain } from "../../provider/naming";
import { joinSegment, leaveSegment } from "../../provider/orchestration/extension";
import { applyNetwork, deleteNetwork } from "../../provider/orchestration/network";
import { buildNetworkSpec } from "../../provider/model/network";
import { DhcpRange, NetworkExtension, NetworkExtensionArgs, Port, VirtualNetwork } from "../../sdk";
import { findOp, findResource, TestStack } from "../engine/engine";
import { stretchedLabConfig } from "../support/stretchedLab";
import { tapGuestAdd } from "../support/tapGuest";
import {
  guestAdd,
  guestCommand,
  guestDel,
  guestDhcp,
  guestExec,
  hostExec,
  hostReboot,
  LabHost,
  upstreamExec,
} from "../lab/lab";
import {
  captureOnHost,
  captureUpstream,
  connectionFor,
  labHosts,
  privateKeyOf,
  projectDir,
  sh,
  snapshot,
  sshLogins,
} from "./support";

const PROGRAM = path.resolve(__dirname, "../../examples/stretched-lab/index.js");
const GUESTS = ["sa", "sb", "sc"];

/** The example's config: which hosts the network spans (the first one is the network's). */
function spanning(hosts: LabHost[]) {
  return { config: stretchedLabConfig(hosts, privateKeyOf(hosts[0])) };
}

async function ping(guest: string, ip: string, extra: string[] = []): Promise<boolean> {
  return (await guestExec(guest, ["ping", "-c", "1", "-W", "2", ...extra, ip])).code === 0;
}

/** Pings every 10 ms while `during` runs; how many were sent and answered. */
async function pingThroughout(guest: string, ip: string, during: () => Promise<unknown>) {
  const argv = guestCommand(guest, ["ping", "-n", "-i", "0.01", ip]);
  const p = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  p.stdout.on("data", (d) => (out += d));
  const exited = new Promise((resolve) => p.on("close", resolve));
  await new Promise((resolve) => setTimeout(resolve, 300));
  try {
    await during();
  } finally {
    await new Promise((resolve) => setTimeout(resolve, 300));
    p.kill("SIGINT");
    await exited;
  }
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
  if (!m) throw new Error(`no ping summary: ${out}`);
  return { sent: Number(m[1]), received: Number(m[2]) };
}

/** A host's snapshot with what a (simulated) reboot renumbers: the peer index of its veths. */
const snapshotOf = async (host: string) => (await snapshot(host)).replace(/@if\d+/g, "");

const fdbOf = (host: string) => sh(host, "bridge fdb show dev vx-lab | grep permanent | sort");

describe("one network across three hosts over VXLAN (examples/stretched-lab), through the engine path", function () {
  this.timeout(180_000);
  let hosts: LabHost[];
  let h1: LabHost, h2: LabHost, h3: LabHost;
  let stack: TestStack;
  const found: Record<string, string> = {};
  const leases: Record<string, { ip: string; mtu?: number }> = {};

  before(async () => {
    hosts = await labHosts(3);
    [h1, h2, h3] = hosts;
    for (const g of GUESTS) await guestDel(g);
    for (const h of hosts) found[h.name] = await snapshotOf(h.name);
    stack = new TestStack({ cwd: projectDir() });
  });
  after(async () => {
    for (const g of GUESTS) await guestDel(g);
    await stack.destroy(spanning(hosts));
    for (const h of hosts)
      expect(await snapshotOf(h.name), `${h.name} after destroy`).to.equal(found[h.name]);
  });

  it("stretches the network from h1 to h2 over one SSH connection per host", async () => {
    const logins = hosts.map((h) => sshLogins(h.name));
    const r = await stack.up(PROGRAM, spanning([h1, h2]));
    expect(r.summary.create).to.equal(3);
    expect(hosts.map((h, i) => sshLogins(h.name) - logins[i])).to.deep.equal([1, 1, 0]);
    expect(r.outputs.bridges).to.deep.equal({ h1: "vn-lab", h2: "vn-lab" });
    expect(r.outputs.mtu).to.equal(1450);
    const ext = findResource(stack.state, "lab-h2")!.outputs;
    expect(ext.members).to.deep.equal([h1.uplinkAddress, h2.uplinkAddress]);
    expect(ext.effectiveLocalAddress).to.equal(h2.uplinkAddress);
    // The extension's bridge has no address at all, and nothing of dnsmasq or NAT is on h2.
    expect(await sh("h2", "ip -o addr show dev vn-lab")).to.equal("");
    expect(await sh("h2", "ls /var/lib/virtnet/networks 2>&1 || true")).to.match(/No such file/);
  });

  it("serves guests on h2 from h1's range, with the segment's MTU, and joins them to h1's guests", async () => {
    await guestAdd("sa", "h1", "vn-lab");
    await guestAdd("sb", "h2", "vn-lab");
    leases.sa = await guestDhcp("sa");
    leases.sb = await guestDhcp("sb");
    expect(leases.sb.ip).to.match(/^10\.60\.0\.1\d\d$/);
    expect(leases.sb).to.include({ router: "10.60.0.1", serverId: "10.60.0.1", mtu: 1450 });
    expect(await sh("h2", "cat /sys/class/net/vn-lab/mtu")).to.equal("1450\n");
    expect(await sh("h1", "cat /sys/class/net/vn-lab/mtu")).to.equal("1450\n");
    expect(await ping("sb", leases.sa.ip)).to.equal(true);
    // A full-size frame crosses with DF set: the MTU DHCP gave leaves room for VXLAN's overhead.
    expect(await ping("sb", leases.sa.ip, ["-M", "do", "-s", String(1450 - 28)])).to.equal(true);
  });

  it("adds h3 while h2's guest pings h1's every 10 ms: nothing is lost", async () => {
    const logins = hosts.map((h) => sshLogins(h.name));
    const { sent, received } = await pingThroughout("sb", leases.sa.ip, () =>
      stack.up(PROGRAM, spanning(hosts)),
    );
    expect(sent).to.be.greaterThan(20);
    expect(received).to.equal(sent);
    expect(hosts.map((h, i) => sshLogins(h.name) - logins[i])).to.deep.equal([1, 1, 1]);
    // Every member floods to every other one.
    expect(await fdbOf("h1"))
      .to.include("dst 198.19.0.12")
      .and.include("dst 198.19.0.13");
    expect(await fdbOf("h2"))
      .to.include("dst 198.19.0.11")
      .and.include("dst 198.19.0.13");
    expect(await fdbOf("h3"))
      .to.include("dst 198.19.0.11")
      .and.include("dst 198.19.0.12");
  });

  it("joins guests on h2 and h3 directly, with h1's DNS and h1's NAT", async () => {
    await guestAdd("sc", "h3", "vn-lab");
    leases.sc = await guestDhcp("sc");
    expect(leases.sc.mtu).to.equal(1450);
    // Between the two extensions the frames go straight from h2 to h3 over UDP 4789.
    const seen = await captureOnHost("h2", "udp port 4789 and host 198.19.0.13", () =>
      ping("sb", leases.sc.ip),
    );
    expect(seen).to.match(/198\.19\.0\.1[23]\.\d+ > 198\.19\.0\.1[23]\.4789: VXLAN/);
    expect(await ping("sc", leases.sb.ip)).to.equal(true);
    expect(await ping("sc", leases.sa.ip, ["-M", "do", "-s", String(1450 - 28)])).to.equal(true);
    expect(await ping("sb", leases.sc.ip, ["-M", "do", "-s", String(1450 - 28)])).to.equal(true);
    const dns = await guestExec("sc", ["busybox", "nslookup", "sb.lab.test", "10.60.0.1"]);
    expect(dns.stdout).to.include(leases.sb.ip);
    const out = await captureUpstream("icmp and dst host 198.51.100.1", () => ping("sc", "198.51.100.1"));
    expect(out).to.include(`${h1.uplinkAddress} > 198.51.100.1`);
  });

  it("drops VXLAN of the segment's VNI from an address that is not a member", async () => {
    const vni = String(findResource(stack.state, "lab-h2")!.outputs.effectiveVni);
    const rogue = "10.60.0.250"; // the sender's address inside the segment
    const inject = () =>
      upstreamExec(["ping", "-c", "2", "-i", "0.2", "-W", "1", "-I", "vxrogue", "10.60.0.1"]);
    await upstreamExec([
      "ip",
      "link",
      "add",
      "vxrogue",
      "type",
      "vxlan",
      "id",
      vni,
      "remote",
      h1.uplinkAddress,
      "local",
      "198.19.0.1",
      "dstport",
      "4789",
    ]);
    try {
      await upstreamExec(["ip", "link", "set", "vxrogue", "up"]);
      await upstreamExec(["ip", "addr", "add", `${rogue}/24`, "dev", "vxrogue"]);
      // Without the filter the frame would reach the segment: the test can see it when it gets through.
      await sh("h1", `nft delete chain inet virtnet ${nftSegmentChain("lab")}`);
      expect(await captureOnHost("h1", `src host ${rogue}`, inject)).to.include(rogue);
      await stack.refresh(spanning(hosts));
      expect(findResource(stack.state, "lab")!.outputs.drift).to.include("apply segment filter");
      await stack.up(PROGRAM, spanning(hosts));
      const arrived = await captureOnHost("h1", "udp port 4789 and src host 198.19.0.1", inject);
      expect(arrived).to.include("198.19.0.1");
      // Dropped before the VXLAN device: nothing from the sender reaches the segment (tcpdump prints only a newline).
      expect(await captureOnHost("h1", `src host ${rogue}`, inject)).to.not.include(rogue);
    } finally {
      await upstreamExec(["ip", "link", "del", "vxrogue"]);
    }
  });

  it("reports a missing VXLAN device, missing and foreign FDB entries and a missing bridge; up repairs them", async () => {
    await sh("h2", "ip link del vx-lab");
    await sh("h3", "bridge fdb del 00:00:00:00:00:00 dev vx-lab dst 198.19.0.12");
    await sh("h3", "bridge fdb append 00:00:00:00:00:00 dev vx-lab dst 198.19.0.99");
    await guestDel("sc");
    await sh("h3", "ip link del vn-lab");
    await stack.refresh(spanning(hosts));
    const drift = (name: string) => findResource(stack.state, name)!.outputs.drift;
    expect(drift("lab-h2")).to.include.members(["create VXLAN device vx-lab", "add FDB entry 198.19.0.11"]);
    expect(drift("lab-h3")).to.include.members([
      "create bridge vn-lab",
      "attach vx-lab to vn-lab",
      "remove FDB entry 198.19.0.99",
      "add FDB entry 198.19.0.12",
    ]);
    // A device of that name with another VNI is made anew.
    await sh("h3", "ip link del vx-lab && ip link add vx-lab type vxlan id 7 dstport 4789 local 198.19.0.13");
    await sh("h3", "ip link set vx-lab alias virtnet-vxlan:lab");
    await stack.refresh(spanning(hosts));
    expect(drift("lab-h3")).to.include.members(["delete VXLAN device vx-lab", "create VXLAN device vx-lab"]);
    const r = await stack.up(PROGRAM, spanning(hosts));
    for (const name of ["lab-h2", "lab-h3"]) expect(findOp(r, name)!.op, name).to.equal("update");
    await stack.refresh(spanning(hosts));
    for (const name of ["lab", "lab-h2", "lab-h3"]) expect(drift(name), name).to.deep.equal([]);
    expect(await fdbOf("h3")).to.not.include("198.19.0.99");
    await guestAdd("sc", "h3", "vn-lab");
    leases.sc = await guestDhcp("sc");
    expect(await ping("sc", leases.sb.ip)).to.equal(true);
    expect(await ping("sb", leases.sa.ip)).to.equal(true);
  });

  it("brings every member back after a reboot", async () => {
    for (const g of ["sa", "sc"]) await guestDel(g);
    await hostReboot("h3");
    await hostReboot("h1");
    for (const h of ["h1", "h3"]) {
      const r = await sh(h, "sh /var/lib/virtnet/restore && echo restored");
      expect(r).to.include("restored");
    }
    await stack.refresh(spanning(hosts));
    for (const name of ["lab", "lab-h2", "lab-h3"])
      expect(findResource(stack.state, name)!.outputs.drift, name).to.deep.equal([]);
    await guestAdd("sa", "h1", "vn-lab");
    await guestAdd("sc", "h3", "vn-lab");
    leases.sa = await guestDhcp("sa");
    leases.sc = await guestDhcp("sc");
    expect(await ping("sc", leases.sb.ip)).to.equal(true);
    expect(await ping("sb", leases.sa.ip)).to.equal(true);
  });

  it("removes h2: h3 keeps working, h2 is as before it joined, and the others forget it", async () => {
    await guestDel("sb");
    const { sent, received } = await pingThroughout("sc", leases.sa.ip, () =>
      stack.up(PROGRAM, spanning([h1, h3])),
    );
    expect(received).to.equal(sent);
    expect(await snapshotOf("h2")).to.equal(found.h2);
    expect(await fdbOf("h1")).to.not.include("198.19.0.12");
    expect(await fdbOf("h3")).to.not.include("198.19.0.12");
    expect(await sh("h1", "nft list table inet virtnet")).to.not.include("198.19.0.12");
    expect(await sh("h3", "nft list table inet virtnet")).to.not.include("198.19.0.12");
    expect(await sh("h3", "bridge fdb show dev vx-lab")).to.not.include("198.19.0.12");
    expect(await ping("sc", leases.sa.ip)).to.equal(true);
    // lab-h3's outputs are as of its own last change; a refresh reads the member list again.
    await stack.refresh(spanning([h1, h3]));
    expect(findResource(stack.state, "lab-h3")!.outputs.members).to.deep.equal([
      h1.uplinkAddress,
      h3.uplinkAddress,
    ]);
  });
});

describe("NetworkExtension: bad input and a failed join change no host", function () {
  this.timeout(120_000);
  let hosts: LabHost[];
  let stack: TestStack;
  const snapshots = () => Promise.all(["h1", "h2", "h3"].map(snapshotOf));

  /** A network on h1 and, when given, an extension on h2 with these arguments. */
  function program(args?: Partial<NetworkExtensionArgs>, bridgeMtu?: number) {
    return () => {
      const net = new VirtualNetwork("lab", {
        connection: connectionFor(hosts[0]),
        mode: "nat",
        ipv4: { cidr: "10.60.0.0/24" },
        ...(bridgeMtu ? { bridge: { mtu: bridgeMtu } } : {}),
      });
      if (args)
        new NetworkExtension("lab-h2", {
          network: net,
          connection: connectionFor(hosts[1]),
          localAddress: hosts[1].uplinkAddress,
          ...args,
        });
      return { net };
    };
  }

  async function refused(args: Partial<NetworkExtensionArgs>, message: RegExp, bridgeMtu?: number) {
    await stack.up(() => (program(undefined, bridgeMtu)(), {}));
    const before = await snapshots();
    const err = await stack
      .up(() => (program(args, bridgeMtu)(), {}))
      .then(
        () => expect.fail("up should fail"),
        (e) => e,
      );
    expect(err.message).to.match(message);
    expect(await snapshots()).to.deep.equal(before);
  }

  before(async () => {
    hosts = await labHosts(3);
    stack = new TestStack({ cwd: projectDir() });
  });
  afterEach(async () => {
    await stack.destroy();
  });

  it("refuses an extension on the network's own host at preview", async () => {
    const err = await stack
      .preview(() => (program({ connection: connectionFor(hosts[0]) })(), {}))
      .then(
        () => expect.fail("preview should fail"),
        (e) => e,
      );
    expect(err.message).to.match(/connection: is the network's own host \(198\.18\.0\.11:22\)/);
  });

  it("refuses a VNI that a VXLAN device virtnet did not make uses", async () => {
    await sh("h2", "ip link add vxforeign type vxlan id 4242 dstport 4789 local 198.19.0.12");
    try {
      await refused({ vni: 4242 }, /VNI 4242 is used by VXLAN device vxforeign, which virtnet did not make/);
    } finally {
      await sh("h2", "ip link del vxforeign");
    }
  });

  it("refuses a localAddress that is not the host's", async () => {
    await refused(
      { localAddress: "198.19.0.99" },
      /underlay address 198\.19\.0\.99 is not an address of this host/,
    );
  });

  it("refuses a localAddress the network's host has no route to", async () => {
    await sh("h2", "ip addr add 192.0.2.12/32 dev lo");
    await sh("h1", "ip route add unreachable 192.0.2.12/32");
    try {
      await refused({ localAddress: "192.0.2.12" }, /no route to the extension's address 192\.0\.2\.12/);
    } finally {
      await sh("h2", "ip addr del 192.0.2.12/32 dev lo");
      await sh("h1", "ip route del unreachable 192.0.2.12/32");
    }
  });

  it("refuses a network whose MTU leaves no room for VXLAN's overhead", async () => {
    await refused(
      {},
      /MTU 1500 leaves no room for VXLAN's 50 bytes: eth0, the way to 198\.19\.0\.1\d, has MTU 1500 \(at most 1450\)/,
      1500,
    );
  });

  it("refuses a second extension of the network on the same host", async () => {
    await stack.up(() => (program({})(), {}));
    const before = await snapshots();
    // The same host again, reached as another user: another connection, the same host.
    const again = { ...connectionFor(hosts[1]), user: "vnsudo", sudo: true };
    const err = await stack
      .up(() => {
        const net = program({})().net;
        new NetworkExtension("lab-h2-again", {
          network: net,
          connection: again,
          localAddress: hosts[1].uplinkAddress,
        });
        return {};
      })
      .then(
        () => expect.fail("up should fail"),
        (e) => e,
      );
    expect(err.message).to.match(/network "lab" already has extension "lab-h2" on this host/);
    expect(await snapshots()).to.deep.equal(before);
  });

  it("puts back the hosts that changed when one host's part of a join fails", async () => {
    const [home, h2, h3] = await Promise.all(hosts.map((h) => connect(connectionFor(h))));
    const spec = buildNetworkSpec({ mode: "nat", ipv4: { cidr: "10.60.0.0/24" } }, "lab").spec!;
    await applyNetwork(home, spec);
    const byLabel = new Map([h2, h3].map((h) => [h.label, h]));
    const network = { id: "198.18.0.11:22/lab", name: "lab", bridge: "vn-lab" };
    const segmentHosts = (self: typeof h2) => ({ home, self, peer: async (l: string) => byLabel.get(l) });
    const ext = (h: LabHost) => ({ name: `lab-${h.name}`, network, localAddress: h.uplinkAddress });
    try {
      await joinSegment(ext(hosts[1]), segmentHosts(h2));
      const before = await snapshots();
      const err = await joinSegment(ext(hosts[2]), segmentHosts(h3), {
        failAfter: `write ${extensionPaths("lab").record}`,
      }).then(
        () => expect.fail("the join should fail"),
        (e) => e,
      );
      expect(err.message).to.match(
        /injected failure.*the other hosts \(.*198\.18\.0\.11.*198\.18\.0\.12.*\) were put back/,
      );
      expect(await snapshots()).to.deep.equal(before);
    } finally {
      await leaveSegment(ext(hosts[1]), segmentHosts(h2));
      await deleteNetwork(home, "lab", "vn-lab");
    }
  });
});

describe("NetworkExtension: a dual-stack isolated network over an IPv6 underlay", function () {
  this.timeout(120_000);
  let hosts: LabHost[];
  let stack: TestStack;
  let found: string[];

  /** The guest's global IPv6 address from the router advertisements of h1's dnsmasq, once usable. */
  async function slaac(guest: string): Promise<string> {
    for (let i = 0; i < 50; i++) {
      const r = await guestExec(guest, ["ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global"]);
      const m = /inet6 (fd00:61:[0-9a-f:]*)\/64/.exec(r.stdout);
      if (m && !r.stdout.includes("tentative")) return m[1];
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`${guest}: no SLAAC address`);
  }

  before(async () => {
    hosts = await labHosts(3);
    found = await Promise.all(["h1", "h3"].map(snapshotOf));
    stack = new TestStack({ cwd: projectDir() });
  });
  after(async () => {
    for (const g of ["s6a", "s6c"]) await guestDel(g);
    await stack.destroy();
    expect(await Promise.all(["h1", "h3"].map(snapshotOf))).to.deep.equal(found);
  });

  it("serves both families across hosts, with IPv6's larger overhead in the MTU, and routes nothing out", async () => {
    const r = await stack.up(() => {
      const net = new VirtualNetwork("lab6", {
        connection: connectionFor(hosts[0]),
        mode: "isolated",
        ipv4: { cidr: "10.61.0.0/24" },
        ipv6: { cidr: "fd00:61::/64" },
      });
      new DhcpRange("pool6", { network: net, start: "10.61.0.100", end: "10.61.0.199" });
      const ext = new NetworkExtension("lab6-h3", {
        network: net,
        connection: connectionFor(hosts[2]),
        localAddress: hosts[2].uplinkAddress6,
      });
      return { mtu: ext.mtu, members: ext.members };
    });
    expect(r.outputs.mtu).to.equal(1500 - 70);
    expect(r.outputs.members).to.deep.equal([hosts[0].uplinkAddress6, hosts[2].uplinkAddress6]);
    await guestAdd("s6a", "h1", "vn-lab6");
    await guestAdd("s6c", "h3", "vn-lab6");
    const lease = await guestDhcp("s6c");
    expect(lease).to.include({ mtu: 1430, router: null });
    const [a6, c6] = [await slaac("s6a"), await slaac("s6c")];
    // The router advertisement told the guest the segment's MTU too.
    expect(await guestExec("s6c", ["cat", "/proc/sys/net/ipv6/conf/eth0/mtu"])).to.include({
      stdout: "1430\n",
    });
    expect(await ping("s6c", a6, ["-6"])).to.equal(true);
    expect(await ping("s6a", c6, ["-6", "-M", "do", "-s", String(1430 - 48)])).to.equal(true);
    expect(await ping("s6c", "10.61.0.1")).to.equal(true);
    const seen = await captureOnHost("h3", "udp port 4789", () => ping("s6c", a6, ["-6"]));
    expect(seen).to.include(`${hosts[2].uplinkAddress6}.`);
  });
});

describe("NetworkExtension: an open network (no firewall of its own)", function () {
  this.timeout(120_000);
  let hosts: LabHost[];
  let stack: TestStack;
  let found: string[];

  before(async () => {
    hosts = await labHosts(3);
    found = await Promise.all(["h1", "h2"].map(snapshotOf));
    stack = new TestStack({ cwd: projectDir() });
  });
  after(async () => {
    for (const g of ["soa", "sob"]) await guestDel(g);
    await stack.destroy();
    expect(await Promise.all(["h1", "h2"].map(snapshotOf))).to.deep.equal(found);
  });

  it("filters VXLAN in virtnet's table all the same, and joins guests across hosts", async () => {
    await stack.up(() => {
      const net = new VirtualNetwork("labo", {
        connection: connectionFor(hosts[0]),
        mode: "open",
        ipv4: { cidr: "10.62.0.0/24" },
      });
      new DhcpRange("poolo", { network: net, start: "10.62.0.100", end: "10.62.0.199" });
      new NetworkExtension("labo-h2", {
        network: net,
        connection: connectionFor(hosts[1]),
        localAddress: hosts[1].uplinkAddress,
      });
      return {};
    });
    // The network has no chains: the table holds the segment's filter alone.
    expect(await sh("h1", "nft list table inet virtnet")).to.include(nftSegmentChain("labo"));
    await guestAdd("soa", "h1", "vn-labo");
    await guestAdd("sob", "h2", "vn-labo");
    const a = await guestDhcp("soa");
    const b = await guestDhcp("sob");
    expect(b.mtu).to.equal(1450);
    expect(await ping("sob", a.ip, ["-M", "do", "-s", String(1450 - 28)])).to.equal(true);
  });
});

describe("NetworkExtension: a Port on an extension host, and a network on the iptables backend", function () {
  this.timeout(180_000);
  let hosts: LabHost[];
  let stack: TestStack;
  let found: string[];
  const TAP = "vt-spnic";

  function program(withPort = true) {
    return () => {
      const net = new VirtualNetwork("labp", {
        connection: connectionFor(hosts[0]),
        mode: "nat",
        ipv4: { cidr: "10.64.0.0/24" },
        firewallBackend: "iptables",
      });
      new DhcpRange("poolp", { network: net, start: "10.64.0.100", end: "10.64.0.199" });
      const ext = new NetworkExtension("labp-h2", {
        network: net,
        connection: connectionFor(hosts[1]),
        localAddress: hosts[1].uplinkAddress,
      });
      if (!withPort) return {};
      const port = new Port("spnic", { network: ext });
      return { tap: port.name, bridge: port.bridgeName };
    };
  }

  async function tap(): Promise<any | undefined> {
    const r = await hostExec("h2", ["ip", "-d", "-j", "link", "show", "dev", TAP]);
    return r.code === 0 ? JSON.parse(r.stdout)[0] : undefined;
  }

  before(async () => {
    hosts = await labHosts(3);
    found = await Promise.all(["h1", "h2"].map(snapshotOf));
    stack = new TestStack({ cwd: projectDir() });
  });
  after(async () => {
    for (const g of ["spa", "spb"]) await guestDel(g);
    await stack.destroy();
    expect(await Promise.all(["h1", "h2"].map(snapshotOf))).to.deep.equal(found);
  });

  it("stretches a network whose rules are iptables', filtering VXLAN in virtnet's nft table: a non-member is dropped", async () => {
    await stack.up(program(false));
    expect(await sh("h1", "iptables-save -t nat")).to.include("VN-");
    expect(await sh("h1", "nft list table inet virtnet")).to.include(nftSegmentChain("labp"));
    const vni = String(findResource(stack.state, "labp-h2")!.outputs.effectiveVni);
    const rogue = "10.64.0.250";
    const inject = () =>
      upstreamExec(["ping", "-c", "2", "-i", "0.2", "-W", "1", "-I", "vxrogue", "10.64.0.1"]);
    const vxlan = [
      "vxlan",
      "id",
      vni,
      "remote",
      hosts[0].uplinkAddress,
      "local",
      "198.19.0.1",
      "dstport",
      "4789",
    ];
    await upstreamExec(["ip", "link", "add", "vxrogue", "type", ...vxlan]);
    try {
      await upstreamExec(["ip", "link", "set", "vxrogue", "up"]);
      await upstreamExec(["ip", "addr", "add", `${rogue}/24`, "dev", "vxrogue"]);
      const arrived = await captureOnHost("h1", "udp port 4789 and src host 198.19.0.1", inject);
      expect(arrived).to.include("198.19.0.1");
      expect(await captureOnHost("h1", `src host ${rogue}`, inject)).to.not.include(rogue);
      // The filter is what drops it: without its chain the frame reaches the segment.
      await sh("h1", `nft delete chain inet virtnet ${nftSegmentChain("labp")}`);
      expect(await captureOnHost("h1", `src host ${rogue}`, inject)).to.include(rogue);
      await stack.refresh();
      expect(findResource(stack.state, "labp")!.outputs.drift).to.include("apply segment filter");
      await stack.up(program(false));
      expect(await captureOnHost("h1", `src host ${rogue}`, inject)).to.not.include(rogue);
    } finally {
      await upstreamExec(["ip", "link", "del", "vxrogue"]);
    }
  });

  it("puts a Port on h2's extension bridge with the segment's MTU: its guest gets h1's lease and reaches h1's guest", async () => {
    const r = await stack.up(program());
    expect(r.outputs).to.deep.equal({ tap: TAP, bridge: "vn-labp" });
    const t = await tap();
    expect(t).to.include({ master: "vn-labp", mtu: 1450, ifalias: "virtnet-port:labp" });
    expect(await sh("h2", "cat /var/lib/virtnet/networks/labp/ports/vt-spnic.json")).to.include(
      '"bridge":"vn-labp"',
    );
    await guestAdd("spa", "h1", "vn-labp");
    await tapGuestAdd("spb", "h2", TAP, "vn-labp");
    const a = await guestDhcp("spa");
    const b = await guestDhcp("spb", { timeoutMs: 15000 });
    expect(b.ip).to.match(/^10\.64\.0\.1\d\d$/);
    expect(b.mtu).to.equal(1450);
    expect(await ping("spb", a.ip, ["-M", "do", "-s", String(1450 - 28)])).to.equal(true);
    expect(await ping("spb", "10.64.0.1")).to.equal(true);
  });

  it("refuses to take the extension off h2 while the Port is on its bridge, changing nothing", async () => {
    const [home, h2] = await Promise.all(hosts.slice(0, 2).map((h) => connect(connectionFor(h))));
    const outs = findResource(stack.state, "labp-h2")!.outputs;
    const spec = {
      name: "labp-h2",
      network: { id: outs.network.id, name: "labp", bridge: "vn-labp" },
      localAddress: hosts[1].uplinkAddress,
    };
    const before = await Promise.all(["h1", "h2"].map(snapshotOf));
    const err = await leaveSegment(spec, { home, self: h2, peer: async () => undefined }).then(
      () => expect.fail("the leave should be refused"),
      (e) => e,
    );
    expect(err.message).to.include(
      `Port ${TAP} of network "labp" is on vn-labp on this host: delete it first`,
    );
    expect(await Promise.all(["h1", "h2"].map(snapshotOf))).to.deep.equal(before);
  });

  it("reports the Port's missing TAP on refresh, up repairs it, and a reboot of h2 brings it back", async () => {
    await guestDel("spb");
    await sh("h2", `ip link del dev ${TAP}`);
    await stack.refresh();
    expect(findResource(stack.state, "spnic")!.outputs.drift).to.deep.equal([
      `create TAP ${TAP} (it is missing)`,
    ]);
    await stack.up(program());
    expect(await tap()).to.include({ master: "vn-labp", mtu: 1450 });
    await hostReboot("h2");
    expect(await tap()).to.equal(undefined);
    expect(await sh("h2", "sh /var/lib/virtnet/restore && echo restored")).to.include("restored");
    expect(await tap()).to.include({ master: "vn-labp", mtu: 1450, ifalias: "virtnet-port:labp" });
    await stack.refresh();
    for (const name of ["labp", "labp-h2", "spnic"])
      expect(findResource(stack.state, name)!.outputs.drift, name).to.deep.equal([]);
    await tapGuestAdd("spb", "h2", TAP, "vn-labp");
    expect((await guestDhcp("spb", { timeoutMs: 15000 })).ip).to.match(/^10\.64\.0\.1\d\d$/);
  });
});
