// DhcpRange end to end: real dnsmasq, real leases on lab guests, every call through the engine path.
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { networkPaths } from "../../provider/naming";
import { DhcpRange, DhcpRangeArgs, getLeases, VirtualNetwork } from "../../sdk";
import { DeploymentError, findOp, findResource, TestStack } from "../engine/engine";
import { guestAdd, guestDel, guestDhcp, guestExec, LabHost } from "../lab/lab";
import { labHosts, sh, stackFor } from "./support";

type RangeArgs = Omit<DhcpRangeArgs, "network">;

function program(ranges: Record<string, RangeArgs>, withLeases = false) {
  return async () => {
    const net = new VirtualNetwork("dhcpnet", {
      mode: "nat",
      ipv4: { cidr: "10.80.0.0/24" },
      domain: { name: "lab.test", localOnly: true },
      dns: { hosts: [{ ip: "10.80.0.10", hostnames: ["db"] }] },
    });
    const outs: Record<string, unknown> = { bridgeName: net.bridgeName };
    for (const [name, args] of Object.entries(ranges)) {
      const r = new DhcpRange(name, { network: net, ...args });
      outs[`${name}Size`] = r.size;
    }
    if (withLeases) outs.leases = getLeases({ network: net });
    return outs;
  };
}

async function dnsmasqPid(): Promise<string> {
  return (await sh("h1", `cat ${networkPaths("dhcpnet").dnsmasqPid}`)).trim();
}

async function lookup(guest: string, name: string): Promise<string> {
  return (await guestExec(guest, ["busybox", "nslookup", name, "10.80.0.1"])).stdout;
}

describe("DhcpRange on a lab host, through the engine path", function () {
  this.timeout(120_000);
  let h1: LabHost;
  let stack: TestStack;
  const guests: string[] = [];
  const addGuest = async (name: string, mac?: string) => {
    await guestAdd(name, "h1", "vn-dhcpnet", mac ? { mac } : {});
    guests.push(name);
  };

  const reservation1 = { mac: "52:54:00:aa:00:01", ip: "10.80.0.150", hostname: "db1" };
  const reservation2 = { mac: "52:54:00:aa:00:02", ip: "10.80.0.151", hostname: "db2" };
  const pool: RangeArgs = { start: "10.80.0.100", end: "10.80.0.149", hosts: [reservation1] };
  const more: RangeArgs = { ...pool, hosts: [reservation1, reservation2] };

  before(async () => {
    [h1] = await labHosts(2);
    stack = stackFor(h1);
  });
  after(async () => {
    for (const g of guests) await guestDel(g);
    await stack.destroy();
  });

  it("serves a reserved guest its address and name, and a dynamic guest one inside the range", async () => {
    const r = await stack.up(program({ pool }));
    expect(findOp(r, "pool")!.op).to.equal("create");
    expect(r.outputs.poolSize).to.equal(50);

    await addGuest("r1", "52:54:00:aa:00:01");
    const reserved = await guestDhcp("r1", { timeoutMs: 15000 });
    expect(reserved.ip).to.equal("10.80.0.150");
    expect(reserved.router).to.equal("10.80.0.1");

    await addGuest("d1");
    const dynamic = await guestDhcp("d1", { timeoutMs: 15000 });
    const last = Number(dynamic.ip.split(".")[3]);
    expect(dynamic.ip.startsWith("10.80.0.")).to.equal(true);
    expect(last).to.be.within(100, 149);

    expect(await lookup("d1", "db1.lab.test")).to.include("10.80.0.150");
    expect(await lookup("d1", "db")).to.include("10.80.0.10");
  });

  it("adds a reservation live: same dnsmasq, the held lease survives, the new one is served", async () => {
    const pidBefore = await dnsmasqPid();
    const leasesBefore = await sh("h1", `cat ${networkPaths("dhcpnet").leases}`);
    expect(leasesBefore).to.include("52:54:00:aa:00:01");

    const r = await stack.up(program({ pool: more }));
    expect(findOp(r, "pool")!.op).to.equal("update");
    expect(await dnsmasqPid()).to.equal(pidBefore);
    expect(await sh("h1", `cat ${networkPaths("dhcpnet").leases}`)).to.include("52:54:00:aa:00:01");

    await addGuest("r2", "52:54:00:aa:00:02");
    expect((await guestDhcp("r2", { timeoutMs: 15000 })).ip).to.equal("10.80.0.151");
    // The first guest renews and keeps its address.
    expect((await guestDhcp("r1", { timeoutMs: 15000 })).ip).to.equal("10.80.0.150");
  });

  it("serves two ranges; deleting one leaves the other and DNS working", async () => {
    const second: RangeArgs = { start: "10.80.0.200", end: "10.80.0.200", leaseTime: "30m" };
    await stack.up(program({ pool: more, second }));
    const conf = await sh("h1", `cat ${networkPaths("dhcpnet").dnsmasqConf}`);
    expect(conf).to.include("dhcp-range=10.80.0.100,10.80.0.149,255.255.255.0,1h");
    expect(conf).to.include("dhcp-range=10.80.0.200,10.80.0.200,255.255.255.0,30m");

    const r = await stack.up(program({ second }));
    expect(findOp(r, "pool")!.op).to.equal("delete");
    const after = await sh("h1", `cat ${networkPaths("dhcpnet").dnsmasqConf}`);
    expect(after).to.not.include("10.80.0.100");
    await addGuest("s1");
    expect((await guestDhcp("s1", { timeoutMs: 15000 })).ip).to.equal("10.80.0.200");
    expect(await lookup("s1", "db")).to.include("10.80.0.10");
  });

  it("exports the network with its ranges as libvirt XML that libvirt's schema accepts", async () => {
    await stack.refresh(); // the network's outputs pick up the ranges the host records for it
    const xml = findResource(stack.state, "dhcpnet")!.outputs.libvirtXml as string;
    expect(xml).to.match(/<range start=["']10\.80\.0\.200["'] end=["']10\.80\.0\.200["']/);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "virtnet-xml-")), "net.xml");
    fs.writeFileSync(file, xml);
    const r = spawnSync("virt-xml-validate", [file, "network"], { encoding: "utf8" });
    expect(r.status, r.stdout + r.stderr).to.equal(0);
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  });

  it("lists current leases with getLeases", async () => {
    const second: RangeArgs = { start: "10.80.0.200", end: "10.80.0.200", leaseTime: "30m" };
    const r = await stack.up(program({ second }, true));
    const leases = r.outputs.leases as { mac: string; ip: string }[];
    expect(leases.map((l) => l.ip)).to.include("10.80.0.200");
    expect(leases.every((l) => /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(l.mac))).to.equal(true);
  });

  it("refuses bad ranges at check, naming the property, and changes nothing", async () => {
    const before = await sh("h1", `cat ${networkPaths("dhcpnet").dnsmasqConf}`);
    const bad = program({
      broken: {
        start: "10.80.0.50",
        end: "10.80.1.20",
        leaseTime: "1x",
        hosts: [
          { mac: "01:00:5e:00:00:01", ip: "10.80.0.60" },
          { mac: "52:54:00:aa:00:09", ip: "10.80.0.1" },
        ],
      },
    });
    const err: DeploymentError = await stack.up(bad).then(
      () => expect.fail("up should fail"),
      (e) => e,
    );
    const props = findOp(err.result, "broken")!.failures!.map((f) => f.property);
    expect(props).to.include.members(["end", "leaseTime", "hosts[0].mac", "hosts[1].ip"]);
    expect(await sh("h1", `cat ${networkPaths("dhcpnet").dnsmasqConf}`)).to.equal(before);
    expect(findResource(stack.state, "broken")).to.equal(undefined);
  });
});

// libvirt's <dhcp> with <host>s and no <range>: only the reserved guests get an address.
describe("static-only DHCP (a DhcpRange of reservations alone), through the engine path", function () {
  this.timeout(120_000);
  const reservedMac = "52:54:00:89:00:11";
  let stack: TestStack;

  before(async () => {
    const [h1] = await labHosts(2);
    stack = stackFor(h1);
    await stack.up(() => {
      const net = new VirtualNetwork("fixednet", { mode: "nat", ipv4: { cidr: "10.89.0.0/24" } });
      new DhcpRange("fixed", {
        network: net,
        hosts: [{ mac: reservedMac, ip: "10.89.0.11", hostname: "fixed1" }],
      });
      return {};
    });
    await guestAdd("sr", "h1", "vn-fixednet", { mac: reservedMac });
    await guestAdd("su", "h1", "vn-fixednet", { mac: "52:54:00:89:00:99" });
  });
  after(async () => {
    await stack.destroy();
    await guestDel("sr");
    await guestDel("su");
  });

  it("gives the reserved guest its address", async () => {
    const lease = await guestDhcp("sr");
    expect(lease.ip).to.equal("10.89.0.11");
    expect(lease.router).to.equal("10.89.0.1");
  });

  it("gives a guest without a reservation none", async () => {
    let error: unknown;
    try {
      await guestDhcp("su", { timeoutMs: 8000 });
    } catch (e) {
      error = e;
    }
    expect(error, "an unreserved guest got a lease").to.be.instanceOf(Error);
  });
});

// PXE: the boot file in the DHCP offer, and the file itself over TFTP from the gateway.
describe("network boot (tftp, bootp), through the engine path", function () {
  this.timeout(120_000);
  const root = "/var/tmp/virtnet-e2e-tftp"; // /var is the lab host's own (overlay), not this machine's
  const local = fs.mkdtempSync(path.join(os.tmpdir(), "virtnet-pxe-"));
  let stack: TestStack;

  const pxeNet = (tftpRoot: string) => () => {
    const net = new VirtualNetwork("pxenet", {
      mode: "nat",
      ipv4: { cidr: "10.90.0.0/24" },
      tftp: { root: tftpRoot },
      bootp: { file: "pxe.bin" },
    });
    new DhcpRange("pxepool", { network: net, start: "10.90.0.100", end: "10.90.0.150" });
    return {};
  };

  before(async () => {
    const [h1] = await labHosts(2);
    stack = stackFor(h1);
    await sh(
      "h1",
      `rm -rf ${root}; mkdir -p ${root} && printf 'virtnet boot file\\n' > ${root}/pxe.bin && chmod -R a+rX ${root}`,
    );
  });
  after(async () => {
    await stack.destroy();
    await guestDel("px");
    await sh("h1", `rm -rf ${root}`);
    fs.rmSync(local, { recursive: true, force: true });
  });

  it("refuses a TFTP root the host does not have, before changing anything", async () => {
    const before = await sh("h1", "ip -br link; ls /var/lib/virtnet/networks 2>/dev/null || true");
    const err: DeploymentError = await stack.up(pxeNet(`${root}-missing`)).then(
      () => expect.fail("up should fail"),
      (e) => e,
    );
    expect(String(err.message)).to.include(`tftp.root ${root}-missing is not a directory on the host`);
    expect(await sh("h1", "ip -br link; ls /var/lib/virtnet/networks 2>/dev/null || true")).to.equal(before);
  });

  it("offers the boot file with the gateway as its server, and serves it over TFTP", async () => {
    await stack.up(pxeNet(root));
    await guestAdd("px", "h1", "vn-pxenet");
    const script = path.join(local, "show-offer");
    fs.writeFileSync(
      script,
      '#!/bin/sh\n[ "$1" = bound ] && echo "boot_file=$boot_file siaddr=$siaddr"\nexit 0\n',
      {
        mode: 0o755,
      },
    );
    const r = await guestExec("px", ["busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-t", "5", "-s", script]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include("boot_file=pxe.bin siaddr=10.90.0.1");
    await guestDhcp("px");
    const copy = path.join(local, "pxe.bin");
    const t = await guestExec("px", ["busybox", "tftp", "-g", "-r", "pxe.bin", "-l", copy, "10.90.0.1"]);
    expect(t.code, t.stderr).to.equal(0);
    expect(fs.readFileSync(copy, "utf8")).to.equal("virtnet boot file\n");
  });
});
