// DNS of a network end to end: static records reloaded live, SRV/TXT/CNAME/MX records, forwarders (a DNS server in the
// lab's upstream), and DHCP clients' names under the network's domain.
import { expect } from "chai";
import { networkPaths } from "../../provider/naming";
import { DhcpRange, VirtualNetwork, VirtualNetworkArgs } from "../../sdk";
import { findOp, TestStack } from "../engine/engine";
import {
  guestAdd,
  guestAddr,
  guestDel,
  guestDhcp,
  guestExec,
  LabHost,
  SERVER_ADDRESS,
  upstreamExec,
} from "../lab/lab";
import { labHosts, sh, stackFor } from "./support";

const UPSTREAM_DNS = "198.51.100.53";
const PID_FILE = "/run/virtnet-e2e-upstream-dns.pid";

function program(dns: VirtualNetworkArgs["dns"]) {
  return () => {
    const net = new VirtualNetwork("dnsnet", {
      mode: "nat",
      ipv4: { cidr: "10.85.0.0/24" },
      domain: { name: "lab.test", localOnly: true },
      dns,
    });
    new DhcpRange("dnspool", { network: net, start: "10.85.0.100", end: "10.85.0.150" });
    return {};
  };
}

async function lookup(name: string, type = "a"): Promise<string> {
  return (await guestExec("dq", ["busybox", "nslookup", `-type=${type}`, name, "10.85.0.1"])).stdout;
}

describe("network DNS, through the engine path", function () {
  this.timeout(120_000);
  let h1: LabHost;
  let stack: TestStack;
  const dns = (ip: string): VirtualNetworkArgs["dns"] => ({
    forwarders: [{ address: UPSTREAM_DNS }],
    hosts: [{ ip, hostnames: ["db"] }],
    srv: [{ service: "ldap", protocol: "tcp", target: "db.lab.test", port: 389, priority: 10, weight: 5 }],
    txt: [{ name: "info.lab.test", value: "v=virtnet hello" }],
    cname: [{ name: "www.lab.test", target: "db.lab.test" }],
    mx: [{ domain: "lab.test", target: "db.lab.test", preference: 10 }],
  });

  before(async () => {
    [h1] = await labHosts(2);
    // A DNS server "on the internet": answers ext.example.test, nothing else.
    await upstreamExec(["ip", "addr", "replace", `${UPSTREAM_DNS}/32`, "dev", "lo"]);
    const r = await upstreamExec([
      "dnsmasq",
      `--listen-address=${UPSTREAM_DNS}`,
      "--bind-interfaces",
      "--no-resolv",
      "--no-hosts",
      "--address=/ext.example.test/198.51.100.7",
      `--pid-file=${PID_FILE}`,
      "--user=root",
    ]);
    expect(r.code, r.stderr).to.equal(0);
    stack = stackFor(h1);
    await stack.up(program(dns("10.85.0.10")));
    await guestAdd("dq", "h1", "vn-dnsnet");
    await guestAddr("dq", "10.85.0.50/24", "10.85.0.1");
  });
  after(async () => {
    await guestDel("dq");
    await guestDel("dd");
    await stack.destroy();
    await upstreamExec(["sh", "-c", `kill $(cat ${PID_FILE}); rm -f ${PID_FILE}`]);
    await upstreamExec(["ip", "addr", "del", `${UPSTREAM_DNS}/32`, "dev", "lo"]);
  });

  it("answers static, SRV and TXT records", async () => {
    expect(await lookup("db.lab.test")).to.include("10.85.0.10");
    expect(await lookup("_ldap._tcp.lab.test", "srv")).to.match(/10 5 389 db\.lab\.test/);
    expect(await lookup("info.lab.test", "txt")).to.include("v=virtnet hello");
  });

  it("answers CNAME and MX records", async () => {
    const www = await lookup("www.lab.test");
    expect(www).to.include("www.lab.test\tcanonical name = db.lab.test").and.include("Address: 10.85.0.10");
    expect(await lookup("lab.test", "mx")).to.include("lab.test\tmail exchanger = 10 db.lab.test");
    // The check can fail: a name with no record gets no answer.
    expect(await lookup("ftp.lab.test")).to.not.include("canonical name");
  });

  it("forwards other names to the configured forwarder", async () => {
    expect(await lookup("ext.example.test")).to.include("198.51.100.7");
  });

  it("resolves a DHCP client's own name under the network's domain", async () => {
    await guestAdd("dd", "h1", "vn-dnsnet");
    const r = await guestExec("dd", [
      "busybox",
      "udhcpc",
      "-i",
      "eth0",
      "-n",
      "-q",
      "-t",
      "5",
      "-x",
      "hostname:dyn1",
      "-s",
      "/bin/true",
    ]);
    expect(r.code, r.stderr).to.equal(0);
    expect(await lookup("dyn1.lab.test")).to.match(/10\.85\.0\.1[0-4][0-9]|10\.85\.0\.150/);
  });

  it("reloads a changed record without restarting dnsmasq", async () => {
    const pid = (await sh("h1", `cat ${networkPaths("dnsnet").dnsmasqPid}`)).trim();
    const r = await stack.up(program(dns("10.85.0.11")));
    expect(findOp(r, "dnsnet")!.op).to.equal("update");
    expect((await sh("h1", `cat ${networkPaths("dnsnet").dnsmasqPid}`)).trim()).to.equal(pid);
    expect(await lookup("db.lab.test")).to.include("10.85.0.11");
  });
});

// The host's own resolvers (the lab host's resolv.conf names SERVER_ADDRESS) and the DNS behaviours libvirt's
// networks have: an isolated network's guests must not reach those resolvers; plain names go upstream unless
// forwardPlainNames is false; a domain-only forwarder sends its domain to them; /etc/hosts on request; a
// reservation's name with a domain.
describe("the host's resolvers and libvirt's DNS behaviours, through the engine path", function () {
  this.timeout(120_000);
  const pidFile = "/run/virtnet-e2e-host-resolver.pid";
  const reservedMac = "52:54:00:86:00:20";
  let stack: TestStack;
  let h1: LabHost;

  const hostLookup = async (guest: string, name: string, server: string, type = "a") =>
    (await guestExec(guest, ["busybox", "nslookup", `-type=${type}`, name, server])).stdout;

  before(async () => {
    [h1] = await labHosts(2);
    // The upstream resolver of every lab host: answers these names, nothing else.
    const r = await upstreamExec([
      "dnsmasq",
      `--listen-address=${SERVER_ADDRESS}`,
      "--bind-interfaces",
      "--no-resolv",
      "--no-hosts",
      "--address=/only-upstream.example.test/198.51.100.9",
      "--address=/x.up.lab.test/198.51.100.10",
      "--address=/plainhost/198.51.100.11",
      '--txt-record=plainhost,"from upstream"',
      `--pid-file=${pidFile}`,
      "--user=root",
    ]);
    expect(r.code, r.stderr).to.equal(0);
    stack = stackFor(h1);
    await stack.up(() => {
      const nat = new VirtualNetwork("resnat", {
        mode: "nat",
        ipv4: { cidr: "10.86.0.0/24" },
        domain: { name: "lab.test", localOnly: true },
        dns: { forwarders: [{ domain: "up.lab.test" }] },
      });
      new DhcpRange("respool", {
        network: nat,
        start: "10.86.0.100",
        end: "10.86.0.150",
        hosts: [{ mac: reservedMac, ip: "10.86.0.20", hostname: "a.lab.test" }],
      });
      new VirtualNetwork("resiso", {
        mode: "isolated",
        ipv4: { cidr: "10.87.0.0/24" },
        dns: { hosts: [{ ip: "10.87.0.10", hostnames: ["inside.iso.test"] }] },
      });
      new VirtualNetwork("resloc", {
        mode: "nat",
        ipv4: { cidr: "10.88.0.0/24" },
        dns: { forwardPlainNames: false, etcHosts: true },
        dnsmasqOptions: ["address=/opt.example.test/10.88.0.77"],
      });
      return {};
    });
    await guestAdd("rn", "h1", "vn-resnat", { mac: reservedMac });
    await guestAdd("ri", "h1", "vn-resiso");
    await guestAddr("ri", "10.87.0.50/24");
    await guestAdd("rl", "h1", "vn-resloc");
    await guestAddr("rl", "10.88.0.50/24", "10.88.0.1");
  });
  after(async () => {
    // Networks first: a guest's veth goes with its namespace asynchronously, and a dnsmasq restarting meanwhile
    // (the range's delete) can fail to list the interfaces.
    await stack.destroy();
    for (const g of ["rn", "ri", "rl"]) await guestDel(g);
    await upstreamExec(["sh", "-c", `kill $(cat ${pidFile}); rm -f ${pidFile}`]);
  });

  it("a nat network's guest resolves a name only the host's resolver knows", async () => {
    await guestAddr("rn", "10.86.0.50/24", "10.86.0.1");
    expect(await hostLookup("rn", "only-upstream.example.test", "10.86.0.1")).to.include("198.51.100.9");
  });

  it("an isolated network's guest gets no answer for it", async () => {
    const out = await hostLookup("ri", "only-upstream.example.test", "10.87.0.1");
    expect(out).to.not.include("198.51.100.9");
    // Its DNS answers what the network knows itself.
    expect(await hostLookup("ri", "inside.iso.test", "10.87.0.1")).to.include("10.87.0.10");
  });

  it("forwards plain names upstream by default, and keeps them local with forwardPlainNames: false", async () => {
    expect(await hostLookup("rn", "plainhost", "10.86.0.1")).to.include("198.51.100.11");
    const local = await hostLookup("rl", "plainhost", "10.88.0.1");
    expect(local).to.not.include("198.51.100.11");
    expect(local, "answered by the network's dnsmasq itself: no such name").to.include("NXDOMAIN");
    // Every query type, not only A and AAAA (which dnsmasq's domain-needed alone keeps local).
    expect(await hostLookup("rn", "plainhost", "10.86.0.1", "txt")).to.include("from upstream");
    const txt = await hostLookup("rl", "plainhost", "10.88.0.1", "txt");
    expect(txt).to.not.include("from upstream");
    expect(txt).to.include("NXDOMAIN");
  });

  it("sends a domain-only forwarder's domain to the host's resolvers, inside a local-only domain", async () => {
    expect(await hostLookup("rn", "x.up.lab.test", "10.86.0.1")).to.include("198.51.100.10");
  });

  it("serves the host's /etc/hosts only with etcHosts: true", async () => {
    expect(await hostLookup("rl", "h1.lab", "10.88.0.1")).to.include(h1.address);
    expect(await hostLookup("rn", "h1.lab", "10.86.0.1")).to.not.include(h1.address);
  });

  it("runs dnsmasq with the network's own dnsmasqOptions", async () => {
    expect(await hostLookup("rl", "opt.example.test", "10.88.0.1")).to.include("10.88.0.77");
    expect(await hostLookup("rn", "opt.example.test", "10.86.0.1")).to.not.include("10.88.0.77");
  });

  it("resolves a reservation's host name with a domain once its guest has its lease", async () => {
    const lease = await guestDhcp("rn");
    expect(lease.ip).to.equal("10.86.0.20");
    expect(await hostLookup("rn", "a.lab.test", "10.86.0.1")).to.include("10.86.0.20");
  });
});
