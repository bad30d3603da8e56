// HostBridge on a lab host: h1's uplink eth0 (towards upstream) moves into a bridge and back under the
// guard; a network of mode "bridge" over it puts a guest straight on the upstream LAN (no NAT); a host that
// cannot be reached over new SSH connections after the move rolls back by itself (a proxy drops them). The
// lab's SSH runs over mgmt0; tests/support/uplinkSsh.ts runs a session over eth0 itself for the move under it.
import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { closeAllConnections, connect, connectFresh, ConnectionArgs } from "../../provider/host";
import * as hostBridge from "../../provider/resources/hostBridge";
import * as network from "../../provider/resources/network";
import * as port from "../../provider/resources/port";
import {
  guestAdd,
  guestAddr,
  guestDel,
  guestExec,
  hostExec,
  hostReboot,
  LabHost,
  upstreamExec,
} from "../lab/lab";
import { CutProxy } from "../support-fault/proxy";
import { IFUPDOWN_DHCLIENT } from "../support/ifupdown";
import { UplinkSsh } from "../support/uplinkSsh";
import { captureUpstream, connectionFor, labHosts, sh } from "./support";

const BR = "vnhb0";
const GUEST = "hbg1";
const GUEST_ADDR = "198.19.0.200";
/** Routes the move must carry: one in another table, with protocol, source and metric of its own. */
const EXTRA_ROUTES = [
  "ip route replace 203.0.113.0/24 via 198.19.0.1 dev eth0 table 100 proto static metric 7 src 198.19.0.11",
  "ip route replace 192.0.2.0/24 via 198.19.0.1 dev eth0 metric 33",
].join("; ");

/** The uplink and everything that hangs on it, as the kernel lists it: the state a delete must restore. */
async function uplinkState(): Promise<string> {
  const out = await sh(
    "h1",
    [
      "ip -j addr show dev eth0",
      "ip -j link show dev eth0",
      "ip -j route show table all",
      "ip -6 -j route show table all",
    ].join("; echo; "),
  );
  // The operational state settles by itself; link_index is the veth peer's, outside the host (a lab reboot
  // makes the peer anew).
  const parts = out
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  const routes = [...parts[2], ...parts[3]]
    // IPv6 link-local autoconf is the kernel's own (its routes come as DAD finishes).
    .filter((r: any) => (r.dev === "eth0" || r.dev === BR) && !String(r.dst).startsWith("fe80:"))
    .map((r: any) => JSON.stringify(r))
    .sort();
  const addr = parts[0][0].addr_info.filter((a: any) => a.scope !== "link");
  const { operstate: _o, link_index: _l, ...link } = parts[1][0];
  return JSON.stringify({ addr, link, routes }, null, 1);
}

async function pingUpstream(): Promise<boolean> {
  return (await hostExec("h1", ["ping", "-c", "1", "-W", "2", "198.51.100.1"])).code === 0;
}

describe("HostBridge on a lab host", function () {
  this.timeout(180_000);
  let h1: LabHost;
  let conn: ConnectionArgs;
  let initial: string;
  const props = () => ({ name: BR, uplink: "eth0", confirmTimeout: 8, connection: conn });

  before(async () => {
    [h1] = await labHosts(1);
    conn = connectionFor(h1);
    await sh("h1", EXTRA_ROUTES);
    initial = await uplinkState();
  });
  after(async () => {
    await guestDel(GUEST).catch(() => undefined);
    await hostBridge.remove("", { ...props() }).catch(() => undefined);
    await sh("h1", "ip route del 203.0.113.0/24 table 100; ip route del 192.0.2.0/24; true");
    await closeAllConnections();
  });

  it("refuses a missing uplink, the loopback and a bad confirmTimeout before any change", async () => {
    const r = hostBridge.check({}, { ...props(), uplink: "lo", confirmTimeout: 2 });
    expect(r.failures.map((f: any) => f.property).sort()).to.deep.equal(["confirmTimeout", "uplink"]);
    const err = await hostBridge.create({ ...props(), uplink: "nosuch0" }).catch((e) => e);
    expect(err.message).to.match(/uplink nosuch0 does not exist on this host/);
    expect(await uplinkState()).to.equal(initial);
  });

  it("moves eth0 into the bridge: MAC kept, addresses and every route moved, confirmed over a new connection", async () => {
    const mac = JSON.parse(await sh("h1", "ip -j link show dev eth0"))[0].address;
    const t0 = Date.now();
    const { outs } = await hostBridge.create(props());
    expect(outs.macAddress).to.equal(mac);
    expect(outs.addresses).to.include("198.19.0.11/24");
    expect(outs.routes).to.include.members([
      "default via 198.19.0.1",
      "203.0.113.0/24 via 198.19.0.1 table 100",
    ]);
    // Confirmed: a later confirmation would have rolled the move back, which the checks below would show. How
    // long it took is a figure of the bench (its uplink move gap row), not a test.
    expect(outs.confirmedAfterMs, "confirmed over a new connection").to.be.a("number").that.is.above(0);
    const eth0 = JSON.parse(await sh("h1", "ip -j link show dev eth0"))[0];
    const br = JSON.parse(await sh("h1", `ip -j addr show dev ${BR}`))[0];
    expect(eth0.master).to.equal(BR);
    expect(br.address).to.equal(mac);
    expect(br.addr_info.map((a: any) => a.local)).to.include("198.19.0.11");
    const t100 = await sh("h1", "ip route show table 100");
    expect(t100).to.match(
      /203\.0\.113\.0\/24 via 198\.19\.0\.1 dev vnhb0 proto static src 198\.19\.0\.11 metric 7/,
    );
    expect(await sh("h1", "ip route show default")).to.match(new RegExp(`default via 198.19.0.1 dev ${BR}`));
    expect(await sh("h1", "ip route show 192.0.2.0/24")).to.match(/dev vnhb0 metric 33/);
    expect(await pingUpstream(), "the host reaches upstream through the bridge").to.equal(true);
    // The pooled connection that made the change, and a new one, both work.
    expect((await (await connect(conn)).run("echo ok")).stdout).to.equal("ok\n");
    console.log(`      (create to confirmed: ${Date.now() - t0} ms)`);
    const { props: read } = await hostBridge.read("x", { ...props(), ...outs });
    expect((read as any).drift).to.deep.equal([]);
  });

  it('puts a guest of a mode "bridge" network on the upstream LAN with its own address (no NAT)', async () => {
    const net = { name: "hblan", mode: "bridge", bridge: { name: BR }, connection: conn };
    expect(network.check({}, net).failures).to.deep.equal([]);
    const { outs } = await network.create(net);
    expect(outs.bridgeName).to.equal(BR);
    await guestAdd(GUEST, "h1", BR);
    await guestAddr(GUEST, `${GUEST_ADDR}/24`, "198.19.0.1");
    const seen = await captureUpstream("icmp and dst host 198.51.100.1", () =>
      guestExec(GUEST, ["busybox", "ping", "-c", "3", "-W", "2", "198.51.100.1"]),
    );
    expect(seen).to.include(GUEST_ADDR);
    expect(seen).to.not.include("198.19.0.11 >");
    const back = await hostExec("h1", ["true"]);
    expect(back.code).to.equal(0);
    const read = await network.read("x", { ...net, ...outs });
    expect((read.props as any).drift).to.deep.equal([]);
    // A Port (a VM's TAP) on it: on the host's bridge, up, and gone with its delete.
    const p = { resourceName: "hbnic", network: { name: "hblan", bridgeName: BR }, connection: conn };
    const checkedPort = port.check({}, p);
    expect(checkedPort.failures).to.deep.equal([]);
    const made = await port.create(checkedPort.inputs);
    const tap = JSON.parse(await sh("h1", `ip -j link show dev ${made.outs.name}`))[0];
    expect(tap.master).to.equal(BR);
    await port.remove("x", made.outs);
    expect((await hostExec("h1", ["ip", "link", "show", "dev", made.outs.name])).code).to.not.equal(0);
    await guestDel(GUEST);
    await network.remove("x", { ...net, ...outs });
    expect(JSON.parse(await sh("h1", `ip -j link show dev ${BR}`))[0].ifname, "the bridge stays").to.equal(
      BR,
    );
  });

  it("reports the uplink taken out of the bridge as drift", async () => {
    await sh("h1", "ip link set dev eth0 nomaster");
    const { props: read } = await hostBridge.read("x", props());
    expect((read as any).drift).to.include(`uplink eth0 is not in bridge ${BR}`);
    await sh("h1", `ip link set dev eth0 master ${BR}`);
  });

  it("delete puts the uplink back exactly: addresses, routes in every table, link", async () => {
    await hostBridge.remove("x", props());
    await new Promise((r) => setTimeout(r, 2500)); // IPv6 DAD of the addresses put back
    expect(await uplinkState()).to.equal(initial);
    expect((await hostExec("h1", ["ip", "link", "show", "dev", BR])).code).to.not.equal(0);
    expect(await sh("h1", "ls -A /var/lib/virtnet /run/virtnet 2>/dev/null; true")).to.equal("");
    expect(await pingUpstream()).to.equal(true);
  });

  it("moves the very uplink its SSH session runs over: that session and a new one both work, and back", async () => {
    const uplink = await new UplinkSsh(h1.address, h1.uplinkAddress).start();
    try {
      const via = { ...conn, host: "127.0.0.1", port: uplink.port } as ConnectionArgs;
      const session = await connect(via);
      const client = async (h: { run(s: string): Promise<{ stdout: string }> }) =>
        (await h.run("echo $SSH_CONNECTION")).stdout.split(" ")[0];
      expect(await client(session), "the session comes in over eth0, from upstream").to.equal("198.19.0.1");
      const { outs } = await hostBridge.create({ ...props(), connection: via });
      expect(JSON.parse(await sh("h1", "ip -j link show dev eth0"))[0].master).to.equal(BR);
      expect(await client(session), "the session that made the change").to.equal("198.19.0.1");
      const fresh = await connectFresh(via);
      expect(await client(fresh), "a new session").to.equal("198.19.0.1");
      await fresh.close();
      await hostBridge.remove("x", { ...props(), ...outs, connection: via });
      expect(await client(session), "the session after the delete").to.equal("198.19.0.1");
      await new Promise((r) => setTimeout(r, 2500));
      expect(await uplinkState()).to.equal(initial);
    } finally {
      await closeAllConnections();
      await uplink.stop();
    }
  });

  it("rolls back by itself when no new SSH connection can confirm the move, and says why", async () => {
    const proxy = await new CutProxy(h1.address).start();
    try {
      const via = { ...conn, host: "127.0.0.1", port: proxy.port } as ConnectionArgs;
      await connect(via); // the pooled connection that starts the change
      proxy.dropNextDuringHandshake(1000); // every new one fails
      const err = await hostBridge.create({ ...props(), connection: via }).catch((e) => e);
      // Rolled back by its own confirm window: the error says so, and the host is as before.
      expect(err.message, err.stack).to.match(
        /not confirmed \(a new SSH connection failed.*\); the host rolled back by itself: no confirmation over a new SSH connection within 8 s/,
      );
      await new Promise((r) => setTimeout(r, 2500));
      expect(await uplinkState()).to.equal(initial);
      expect(await pingUpstream()).to.equal(true);
    } finally {
      await proxy.close();
      await hostBridge.remove("x", props()).catch(() => undefined);
    }
  });

  it("with its SSH connection cut at any moment of create or delete, ends fully moved and confirmed or fully as before", async () => {
    const proxy = await new CutProxy(h1.address).start();
    const via = { ...conn, host: "127.0.0.1", port: proxy.port } as ConnectionArgs;
    const p = { ...props(), confirmTimeout: 5, connection: via };
    const moved = async () => {
      const eth0 = JSON.parse(await sh("h1", "ip -j link show dev eth0"))[0];
      const status = await sh("h1", `cat /run/virtnet/host-bridges/${BR}/status 2>/dev/null; true`);
      return eth0.master === BR && /^confirmed /.test(status);
    };
    const outcomes: string[] = [];
    try {
      for (const ms of [0, 20, 60, 120, 250, 500]) {
        await connect(via);
        const cut = setTimeout(() => proxy.cut(), ms);
        const created = await hostBridge.create(p).then(
          () => true,
          () => false,
        );
        clearTimeout(cut);
        if (!created) await new Promise((r) => setTimeout(r, 7500)); // the host's own rollback, if it started
        if (await moved()) outcomes.push(`create cut at ${ms} ms: moved`);
        else {
          await new Promise((r) => setTimeout(r, 2500));
          expect(await uplinkState(), `create cut at ${ms} ms`).to.equal(initial);
          outcomes.push(`create cut at ${ms} ms: as before`);
          await hostBridge.create(props());
        }
        await connect(via);
        const cut2 = setTimeout(() => proxy.cut(), ms);
        const deleted = await hostBridge.remove("x", p).then(
          () => true,
          () => false,
        );
        clearTimeout(cut2);
        if (!deleted) await new Promise((r) => setTimeout(r, 7500));
        if (await moved()) {
          outcomes.push(`delete cut at ${ms} ms: still moved`);
          await hostBridge.remove("x", props());
        } else outcomes.push(`delete cut at ${ms} ms: as before`);
        await new Promise((r) => setTimeout(r, 2500));
        expect(await uplinkState(), `after delete cut at ${ms} ms`).to.equal(initial);
      }
    } finally {
      console.log(`      (${outcomes.join("; ")})`);
      await proxy.close();
      await closeAllConnections();
    }
  });

  it("comes back after a reboot (ifupdown configures eth0 at boot, then virtnet's unit moves it), a Port on it too, and delete then restores eth0 exactly", async () => {
    await closeAllConnections();
    try {
      h1 = await hostReboot("h1", { init: "systemd" });
      await sh("h1", EXTRA_ROUTES);
      const booted = await uplinkState();
      const made = await hostBridge.create(props());
      // A mode "bridge" network over it and a Port (no VLAN) on that: the boot must make the bridge first.
      const net = { name: "hblan", mode: "bridge", bridge: { name: BR }, connection: conn };
      const netMade = await network.create(network.check({}, net).inputs);
      const p = { resourceName: "hbnic", network: { name: "hblan", bridgeName: BR }, connection: conn };
      const portMade = await port.create(port.check({}, p).inputs);
      const tap = portMade.outs.name;
      const tapState = async () => {
        const l = JSON.parse(await sh("h1", `ip -j -d link show dev ${tap}`))[0];
        const vlans = await sh("h1", `bridge -j vlan show dev ${tap}`);
        return {
          master: l.master,
          mtu: l.mtu,
          up: l.flags.includes("UP"),
          tun: l.linkinfo?.info_data,
          vlans,
        };
      };
      const before = await tapState();
      expect(before.master).to.equal(BR);
      await closeAllConnections();
      h1 = await hostReboot("h1"); // systemctl reboot, and a boot
      expect(await tapState(), "the Port is back on the HostBridge's bridge as it was").to.deep.equal(before);
      // Refresh: no drift in any of the three.
      expect(((await hostBridge.read("x", { ...props(), ...made.outs })).props as any).drift).to.deep.equal(
        [],
      );
      expect(((await network.read("x", { ...net, ...netMade.outs })).props as any).drift).to.deep.equal([]);
      expect(((await port.read("x", portMade.outs)).props as any).drift).to.deep.equal([]);
      await port.remove("x", portMade.outs);
      await network.remove("x", { ...net, ...netMade.outs });
      const eth0 = JSON.parse(await sh("h1", "ip -j link show dev eth0"))[0];
      expect(eth0.master, "eth0 is in the bridge after the boot").to.equal(BR);
      const br = JSON.parse(await sh("h1", `ip -j addr show dev ${BR}`))[0];
      expect(br.address).to.equal(eth0.address);
      expect(br.addr_info.map((a: any) => a.local)).to.include.members(["198.19.0.11", "2001:db8:ff::11"]);
      expect(await sh("h1", "ip route show table 100")).to.match(
        /203\.0\.113\.0\/24 via 198\.19\.0\.1 dev vnhb0/,
      );
      expect(await pingUpstream()).to.equal(true);
      await hostBridge.remove("x", props());
      await new Promise((r) => setTimeout(r, 2500));
      expect(await uplinkState()).to.equal(booted);
    } finally {
      await closeAllConnections();
      h1 = await hostReboot("h1", { init: "sshd" });
    }
  });
});

// An uplink whose address comes from a real DHCP server (dnsmasq in upstream) through ISC dhclient, started
// with the command line Debian's ifupdown gives it: the client follows the address to the bridge (same MAC,
// same DUID: the same lease), renews it there, and comes back to eth0 with its own command line.
describe("HostBridge over an uplink that a DHCP client (dhclient) configures", function () {
  this.timeout(180_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "virtnet-hb-dhcp-"));
  const serverLeases = path.join(dir, "leases");
  const serverLog = path.join(dir, "dnsmasq.log");
  const DHCLIENT = ["dhclient", ...IFUPDOWN_DHCLIENT];
  let h1: LabHost;
  let conn: ConnectionArgs;
  let mac: string;
  let leased: string;
  let initial: string;
  const props = () => ({ name: BR, uplink: "eth0", confirmTimeout: 8, connection: conn });
  /** The upstream server's lease length: dnsmasq's shortest, 2 minutes. */
  const LEASE_SECONDS = 120;

  /** The server's leases of the host's MAC: "<ip> <client-id>" each. */
  const leasesOfHost = () =>
    fs
      .readFileSync(serverLeases, "utf8")
      .split("\n")
      .map((l) => l.split(" "))
      .filter((f) => f[1] === mac)
      .map((f) => ({ expires: Number(f[0]), lease: `${f[2]} ${f[4]}` }));
  /** Command lines of the dhclients on the host, NUL-separated arguments joined by spaces. */
  const dhclients = async () =>
    (await sh("h1", `for p in $(pgrep -x dhclient); do tr '\\0' ' ' < /proc/$p/cmdline; echo; done`))
      .split("\n")
      .filter(Boolean)
      .map((l) => l.trim());
  const releases = () =>
    fs
      .readFileSync(serverLog, "utf8")
      .split("\n")
      .filter((l) => /DHCPRELEASE/.test(l));
  /** The uplink's state as uplinkState() compares it, without the lease's lifetimes (they count down). */
  const dhcpUplinkState = async () => {
    const s = JSON.parse(await uplinkState());
    for (const a of s.addr) {
      expect(a.valid_life_time, `${a.local}'s lifetime`).to.be.a("number").above(0);
      delete a.valid_life_time;
      delete a.preferred_life_time;
    }
    return JSON.stringify(s, null, 1);
  };

  before(async () => {
    [h1] = await labHosts(1);
    conn = connectionFor(h1);
    mac = JSON.parse(await sh("h1", "ip -j link show dev eth0"))[0].address;
    const server = await upstreamExec([
      "dnsmasq",
      "--port=0",
      "--interface=br0",
      "--bind-interfaces",
      "--user=root",
      "--no-ping",
      "--log-dhcp",
      `--log-facility=${serverLog}`,
      `--dhcp-leasefile=${serverLeases}`,
      `--pid-file=${path.join(dir, "dnsmasq.pid")}`,
      `--dhcp-range=198.19.0.100,198.19.0.150,255.255.255.0,${LEASE_SECONDS}`,
      "--dhcp-option=option:router,198.19.0.1",
      // Renewals every 10 s: the test sees one happen on the bridge.
      "--dhcp-option=option:T1,10",
      "--dhcp-option=option:T2,60",
    ]);
    expect(server.code, server.stderr).to.equal(0);
    // eth0 loses the lab's static IPv4 addressing and takes it from the server instead (IPv6 stays static).
    await sh(
      "h1",
      "ip -4 addr flush dev eth0; rm -f /var/lib/dhcp/dhclient.eth0.leases /var/lib/dhcp/dhclient6.eth0.leases",
    );
    await sh("h1", `${DHCLIENT.join(" ")} </dev/null >/dev/null 2>&1`);
    leased = JSON.parse(await sh("h1", "ip -4 -j addr show dev eth0"))[0].addr_info[0].local;
    expect(leased).to.match(/^198\.19\.0\.1\d\d$/);
    expect(await dhclients()).to.deep.equal([DHCLIENT.join(" ")]);
    initial = await dhcpUplinkState();
  });
  after(async () => {
    await hostBridge.remove("", props()).catch(() => undefined);
    await closeAllConnections();
    const pid = fs.readFileSync(path.join(dir, "dnsmasq.pid"), "utf8").trim();
    await upstreamExec(["kill", pid]);
    // Back to the lab's static eth0.
    h1 = await hostReboot("h1", { init: "sshd" });
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("moves eth0 with its lease: same address on the bridge, the client there renews it, no release, reachable over a new SSH connection through it", async () => {
    const before = leasesOfHost();
    expect(before.map((l) => l.lease)).to.have.length(1);
    const uplink = await new UplinkSsh(h1.address, leased).start();
    try {
      const via = { ...conn, host: "127.0.0.1", port: uplink.port } as ConnectionArgs;
      const { outs } = await hostBridge.create({ ...props(), connection: via });
      const created = Date.now();
      expect(outs.addresses).to.include(`${leased}/24`);
      const br = JSON.parse(await sh("h1", `ip -4 -j addr show dev ${BR}`))[0];
      expect(br.addr_info.map((a: any) => a.local)).to.deep.equal([leased]);
      expect(br.addr_info[0].dynamic, "a leased address, with the lease's lifetime").to.equal(true);
      // The lease's lifetime, not "forever" (4294967295): the kernel counts it down from the lease's length.
      expect(br.addr_info[0].valid_life_time).to.not.equal(4294967295);
      expect(br.addr_info[0].valid_life_time).to.be.at.most(LEASE_SECONDS);
      expect(JSON.parse(await sh("h1", "ip -4 -j addr show dev eth0"))).to.deep.equal([]);
      expect(await dhclients(), "the client runs on the bridge, with eth0's command line").to.deep.equal([
        [...DHCLIENT.slice(0, -1), BR].join(" "),
      ]);
      // Renewed on the bridge: the server extends the same lease (same address, same client id).
      let after = leasesOfHost();
      for (let i = 0; i < 60 && !(after[0]?.expires > before[0].expires + 2); i++) {
        await new Promise((r) => setTimeout(r, 500));
        after = leasesOfHost();
      }
      expect(
        after.map((l) => l.lease),
        "one lease, the same",
      ).to.deep.equal(before.map((l) => l.lease));
      expect(after[0].expires, "the lease was renewed after the move").to.be.above(before[0].expires + 2);
      expect(after[0].expires * 1000).to.be.at.least(created - 1000 + 110_000);
      expect(releases(), "no DHCPRELEASE").to.deep.equal([]);
      const fresh = await connectFresh(via);
      expect(
        (await fresh.run("echo $SSH_CONNECTION")).stdout.split(" ")[0],
        "a new SSH session over the bridge",
      ).to.equal("198.19.0.1");
      await fresh.close();
      const { props: read } = await hostBridge.read("x", { ...props(), ...outs });
      expect((read as any).drift).to.deep.equal([]);
    } finally {
      await closeAllConnections();
      await uplink.stop();
    }
  });

  it("delete puts the client back on eth0 with its own command line, the lease and eth0 as before", async () => {
    const lease = leasesOfHost().map((l) => l.lease);
    await hostBridge.remove("x", props());
    await new Promise((r) => setTimeout(r, 2500));
    expect(await dhclients()).to.deep.equal([DHCLIENT.join(" ")]);
    expect(await dhcpUplinkState()).to.equal(initial);
    expect(leasesOfHost().map((l) => l.lease)).to.deep.equal(lease);
    expect(releases()).to.deep.equal([]);
    expect(await pingUpstream()).to.equal(true);
  });

  it("rolls back by itself when the move is not confirmed: the client back on eth0, no release", async () => {
    const proxy = await new CutProxy(h1.address).start();
    try {
      const via = { ...conn, host: "127.0.0.1", port: proxy.port } as ConnectionArgs;
      await connect(via);
      proxy.dropNextDuringHandshake(1000);
      const err = await hostBridge.create({ ...props(), connection: via }).catch((e) => e);
      expect(err.message).to.match(/the host rolled back by itself: no confirmation/);
      await new Promise((r) => setTimeout(r, 2500));
      expect(await dhclients()).to.deep.equal([DHCLIENT.join(" ")]);
      expect(await dhcpUplinkState()).to.equal(initial);
      expect(releases()).to.deep.equal([]);
    } finally {
      await proxy.close();
      await closeAllConnections();
    }
  });

  it("comes back after a reboot (ifupdown's dhclient configures eth0, then virtnet's unit moves it and the client to the bridge); delete then gives eth0 back to the client", async () => {
    const original = await sh("h1", "cat /etc/network/interfaces");
    try {
      // eth0's IPv4 from DHCP at boot: ifupdown starts dhclient with the command line above.
      await sh(
        "h1",
        "sed -i 's/^iface eth0 inet static$/iface eth0 inet dhcp/; /^\\taddress 198\\.19\\.0\\./d; /^\\tup ip .*dev eth0/d' /etc/network/interfaces",
      );
      await closeAllConnections();
      h1 = await hostReboot("h1", { init: "systemd" });
      expect(await dhclients(), "ifupdown's dhclient").to.deep.equal([DHCLIENT.join(" ")]);
      const booted = await dhcpUplinkState();
      const address = JSON.parse(await sh("h1", "ip -4 -j addr show dev eth0"))[0].addr_info[0].local;
      await hostBridge.create(props());
      await closeAllConnections();
      h1 = await hostReboot("h1"); // systemctl reboot (ifdown releases the lease, as it would without virtnet), and a boot
      const eth0 = JSON.parse(await sh("h1", "ip -j link show dev eth0"))[0];
      expect(eth0.master, "eth0 is in the bridge after the boot").to.equal(BR);
      expect(await dhclients(), "the client runs on the bridge").to.deep.equal([
        [...DHCLIENT.slice(0, -1), BR].join(" "),
      ]);
      const br = JSON.parse(await sh("h1", `ip -4 -j addr show dev ${BR}`))[0];
      expect(br.addr_info.map((a: any) => a.local)).to.deep.equal([address]);
      expect(JSON.parse(await sh("h1", "ip -4 -j addr show dev eth0"))).to.deep.equal([]);
      expect(
        leasesOfHost().map((l) => l.lease.split(" ")[0]),
        "the server's one lease",
      ).to.deep.equal([address]);
      expect(await pingUpstream()).to.equal(true);
      await hostBridge.remove("x", props());
      await new Promise((r) => setTimeout(r, 2500));
      expect(await dhclients()).to.deep.equal([DHCLIENT.join(" ")]);
      expect(await dhcpUplinkState()).to.equal(booted);
    } finally {
      await hostExec("h1", ["sh", "-c", 'printf "%s" "$1" > /etc/network/interfaces', "sh", original]);
      await closeAllConnections();
    }
  });
});
