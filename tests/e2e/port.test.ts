// Port end to end, through the engine path on a lab host: TAPs on a network's bridge, guests behind them
// (tests/support/tapGuest.ts: a namespace wired to the TAP as a VM's NIC is), isolation, drift, reboot, delete.
import { expect } from "chai";
import { DhcpRange, getFdb, Port, PortArgs, VirtualNetwork } from "../../sdk";
import { DeploymentError, findOp, findResource, TestStack } from "../engine/engine";
import { guestDel, guestDhcp, guestExec, hostExec, hostReboot, LabHost } from "../lab/lab";
import { tapGuestAdd, tapGuestWired } from "../support/tapGuest";
import { labHosts, sh, snapshot, stackFor } from "./support";

const BRIDGE = "vn-ptnet";
const reservation = { mac: "52:54:00:15:01:01", ip: "10.87.0.50", hostname: "pg1" };

type Ports = Record<string, Omit<PortArgs, "network">>;

/** A Port with a reserved MAC, and one with a name, an owner and queues of its own. */
const ports: Ports = {
  ptnic1: { macAddress: reservation.mac },
  ptnic2: { name: "vn-pt-own", owner: "vnplain", multiQueue: true },
};

function program(ports: Ports, opts: { fdb?: boolean; mtu?: number } = {}) {
  return () => {
    const net = new VirtualNetwork("ptnet", {
      mode: "nat",
      ipv4: { cidr: "10.87.0.0/24" },
      bridge: { mtu: opts.mtu ?? 1400 },
    });
    new DhcpRange("ptpool", { network: net, start: "10.87.0.100", end: "10.87.0.149", hosts: [reservation] });
    const outs: Record<string, unknown> = {};
    for (const [name, args] of Object.entries(ports)) {
      const p = new Port(name, { network: net, ...args });
      outs[name] = { name: p.name, bridgeName: p.bridgeName, macAddress: p.macAddress };
    }
    if (opts.fdb) outs.fdb = getFdb({ network: net });
    return outs;
  };
}

async function link(name: string): Promise<any | undefined> {
  const r = await hostExec("h1", ["ip", "-d", "-j", "link", "show", "dev", name]);
  return r.code === 0 ? JSON.parse(r.stdout)[0] : undefined;
}

/** Up to 3 echo requests: the first may go while an earlier failed ARP resolution still stands. */
async function ping(guest: string, address: string): Promise<boolean> {
  return (await guestExec(guest, ["busybox", "ping", "-c", "3", "-W", "2", address])).code === 0;
}

describe("Port on a lab host, through the engine path", function () {
  this.timeout(180_000);
  let h1: LabHost;
  let stack: TestStack;
  let empty: string;
  const guests: string[] = [];
  const addGuest = async (guest: string, tap: string, mac?: string) => {
    guests.push(guest);
    await tapGuestAdd(guest, "h1", tap, BRIDGE, { mac });
  };

  before(async () => {
    [h1] = await labHosts(2);
    stack = stackFor(h1);
    empty = await snapshot("h1");
  });
  after(async () => {
    for (const g of guests) await guestDel(g);
    await stack.destroy();
  });

  it("makes persistent TAPs on the network's bridge, up, with its MTU, owner and queues; outputs", async () => {
    const r = await stack.up(program(ports));
    expect(r.outputs.ptnic1).to.deep.equal({
      name: "vt-ptnic1",
      bridgeName: BRIDGE,
      macAddress: reservation.mac,
    });
    const own = r.outputs.ptnic2 as { name: string; macAddress: string };
    expect(own.name).to.equal("vn-pt-own");
    expect(own.macAddress).to.match(/^52:54:00(:[0-9a-f]{2}){3}$/);
    const t1 = await link("vt-ptnic1");
    expect(t1).to.include({
      master: BRIDGE,
      mtu: 1400,
      ifalias: "virtnet-port:ptnet",
      address: "fe:54:00:15:01:01",
    });
    expect(t1.flags).to.include("UP");
    expect(t1.linkinfo.info_data).to.include({ type: "tap", persist: true, multi_queue: false });
    const t2 = await link("vn-pt-own");
    expect(t2.linkinfo.info_data).to.include({
      type: "tap",
      persist: true,
      multi_queue: true,
      user: "vnplain",
    });
    expect(await sh("h1", "cat /var/lib/virtnet/networks/ptnet/ports/vt-ptnic1.json")).to.include(
      `"macAddress":"${reservation.mac}"`,
    );
    // Nothing to do on the next up.
    const again = await stack.up(program(ports));
    expect(findOp(again, "ptnic1")!.op).to.equal("same");
  });

  it("refuses bad input at check, naming each property", async () => {
    const err: DeploymentError = await stack
      .up(
        program({
          ...ports,
          ptbad: { macAddress: "01:00:5e:00:00:01", vlan: 5000 },
          ptbad2: { vlan: { tagged: [10, 10] }, owner: "Not A User" },
        }),
      )
      .then(
        () => expect.fail("up should fail"),
        (e) => e,
      );
    const properties = (name: string) => [
      ...new Set(findOp(err.result, name)!.failures!.map((f) => f.property)),
    ];
    expect(properties("ptbad")).to.have.members(["macAddress", "vlan"]);
    expect(properties("ptbad2")).to.have.members(["vlan.tagged[1]", "vlan", "owner"]);
    const vlanErr: DeploymentError = await stack.up(program({ ...ports, ptvlan: { vlan: 10 } })).then(
      () => expect.fail("up should fail"),
      (e) => e,
    );
    expect(findOp(vlanErr.result, "ptvlan")!.failures).to.deep.equal([
      {
        property: "vlan",
        reason: 'network "ptnet" is not VLAN-aware: set bridge.vlanFiltering on it to give its ports VLANs',
      },
    ]);
  });

  it("refuses, before any change, a TAP name taken by something else and an owner the host does not have", async () => {
    await sh("h1", "ip tuntap add dev vt-taken mode tap");
    try {
      const before = await snapshot("h1");
      const err: DeploymentError = await stack
        .up(program({ ...ports, taken: {}, noowner: { owner: "nosuchuser" } }))
        .then(
          () => expect.fail("up should fail"),
          (e) => e,
        );
      expect(err.message).to.match(
        /port vt-taken: check host: interface vt-taken already exists and is not virtnet's/,
      );
      expect(err.message).to.match(
        /port vt-noowner: check host: owner "nosuchuser" does not exist on the host/,
      );
      expect(await snapshot("h1")).to.equal(before);
    } finally {
      await sh("h1", "ip link del dev vt-taken");
    }
  });

  it("serves a guest behind a Port its reserved lease, and getFdb lists its MAC on the Port", async () => {
    await addGuest("ptg1", "vt-ptnic1", reservation.mac);
    const lease = await guestDhcp("ptg1", { timeoutMs: 15000 });
    expect(lease.ip).to.equal(reservation.ip);
    expect(await ping("ptg1", "10.87.0.1")).to.equal(true);
    const r = await stack.up(program(ports, { fdb: true }));
    const fdb = r.outputs.fdb as { entries: any[]; ports: any[] };
    expect(fdb.entries).to.deep.include({ mac: reservation.mac, port: "vt-ptnic1", kind: "learned" });
    expect(fdb.ports.find((p) => p.name === "vt-ptnic1")).to.deep.include({
      state: "forwarding",
      isolated: false,
    });
    expect(fdb.ports.find((p) => p.name === "vn-pt-own")).to.deep.include({ state: "disabled" });
  });

  it("keeps isolated ports apart while both reach the gateway; isolation changes in place, same ifindex", async () => {
    const iso: Ports = { ...ports, ptiso1: { isolated: true }, ptiso2: { isolated: true } };
    await stack.up(program(iso));
    await addGuest("ptg2", "vt-ptiso1");
    await addGuest("ptg3", "vt-ptiso2");
    const a = await guestDhcp("ptg2", { timeoutMs: 15000 });
    const b = await guestDhcp("ptg3", { timeoutMs: 15000 });
    expect(await ping("ptg2", "10.87.0.1"), "isolated port to the gateway").to.equal(true);
    expect(await ping("ptg3", "10.87.0.1"), "isolated port to the gateway").to.equal(true);
    expect(await ping("ptg2", b.ip), "isolated to isolated").to.equal(false);
    expect(await ping("ptg2", reservation.ip), "isolated to a port that is not").to.equal(true);
    const ifindex = (await link("vt-ptiso2")).ifindex;

    const r = await stack.up(program({ ...iso, ptiso2: { isolated: false } }));
    expect(findOp(r, "ptiso2")!.op).to.equal("update");
    expect((await link("vt-ptiso2")).ifindex).to.equal(ifindex);
    expect(tapGuestWired("ptg3"), "the guest stayed attached").to.equal(true);
    expect(await ping("ptg2", b.ip), "once one of them is not isolated").to.equal(true);
    expect(await ping("ptg3", a.ip)).to.equal(true);
    await stack.up(program(iso));
    expect(await ping("ptg2", b.ip), "isolated again").to.equal(false);
  });

  it("reports a missing TAP and a TAP moved off its bridge on refresh, and up repairs both", async () => {
    const iso: Ports = { ...ports, ptiso1: { isolated: true }, ptiso2: { isolated: true } };
    await sh("h1", "ip link del dev vn-pt-own && ip link set dev vt-ptiso1 nomaster");
    await stack.refresh();
    expect(findResource(stack.state, "ptnic2")!.outputs.drift).to.deep.equal([
      "create TAP vn-pt-own (it is missing)",
    ]);
    expect(findResource(stack.state, "ptiso1")!.outputs.drift).to.deep.equal([
      "attach TAP vt-ptiso1 to bridge vn-ptnet (it is on none)",
      "isolate TAP vt-ptiso1",
    ]);
    const r = await stack.up(program(iso));
    expect(findOp(r, "ptnic2")!.op).to.equal("update");
    expect(findOp(r, "ptiso1")!.op).to.equal("update");
    expect((await link("vn-pt-own")).linkinfo.info_data).to.include({ multi_queue: true, user: "vnplain" });
    expect((await link("vt-ptiso1")).linkinfo.info_slave_data).to.include({ isolated: true });
    expect((await link("vt-ptiso1")).master).to.equal(BRIDGE);
    await stack.refresh();
    for (const name of Object.keys(iso))
      expect(findResource(stack.state, name)!.outputs.drift, name).to.deep.equal([]);
  });

  it("refuses to delete a TAP a guest holds open, changing nothing; once it lets go, leaves the host as before", async () => {
    // ptg1 still holds vt-ptnic1 (its wire runs outside the host's pid namespace, as the lab's QEMU does).
    const rest: Ports = { ptnic2: ports.ptnic2, ptiso1: { isolated: true }, ptiso2: { isolated: true } };
    const before = await snapshot("h1");
    const err: DeploymentError = await stack.up(program(rest)).then(
      () => expect.fail("up should fail"),
      (e) => e,
    );
    expect(err.message).to.include(
      "port vt-ptnic1: check host: TAP vt-ptnic1 is held open by a process in another pid namespace: stop it (or remove its NIC) first, then delete the Port again",
    );
    expect(await snapshot("h1")).to.equal(before);
    expect(tapGuestWired("ptg1")).to.equal(true);
    for (const g of guests.splice(0)) await guestDel(g);
    const r = await stack.up(program(rest));
    expect(findOp(r, "ptnic1")!.op).to.equal("delete");
    expect(await link("vt-ptnic1")).to.equal(undefined);
    await stack.destroy();
    expect(await snapshot("h1")).to.equal(empty);
  });
});

describe("Port after a reboot of its lab host, through the engine path", function () {
  this.timeout(180_000);
  let h1: LabHost;
  let stack: TestStack;

  before(async () => {
    [h1] = await labHosts(2);
    stack = stackFor(h1);
  });
  after(() => stack.destroy());

  it("comes back after a reboot with its owner, queues and isolation; refresh then sees no drift", async () => {
    const iso: Ports = { ...ports, ptiso1: { isolated: true }, ptiso2: { isolated: true } };
    await stack.up(program(iso));
    h1 = await hostReboot("h1");
    expect(await link("vt-ptnic1")).to.equal(undefined);
    const r = await hostExec("h1", ["sh", "/var/lib/virtnet/restore"]);
    expect(r.code, r.stderr).to.equal(0);
    expect(await link("vt-ptnic1")).to.include({ master: BRIDGE, mtu: 1400, address: "fe:54:00:15:01:01" });
    expect((await link("vn-pt-own")).linkinfo.info_data).to.include({ multi_queue: true, user: "vnplain" });
    expect((await link("vt-ptiso1")).linkinfo.info_slave_data).to.include({ isolated: true });
    await stack.refresh();
    for (const name of Object.keys(iso))
      expect(findResource(stack.state, name)!.outputs.drift, name).to.deep.equal([]);
    await tapGuestAdd("ptg9", "h1", "vt-ptnic1", BRIDGE, { mac: reservation.mac });
    try {
      expect((await guestDhcp("ptg9", { timeoutMs: 15000 })).ip).to.equal(reservation.ip);
    } finally {
      await guestDel("ptg9");
    }
  });
});
