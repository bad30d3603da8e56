// libvirt network XML end to end. A network imported from libvirt XML, deployed through the engine path, behaves
// like libvirt's: the reserved guest gets its address and DNS name, DNS host records answer, egress is
// masqueraded. And libvirt itself (libvirtd in a lab host) defines every network virtnet exports, and its own
// `virsh net-dumpxml` of them imports back with the same meaning.
import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { toLibvirtXml } from "../../provider/libvirt/export";
import { importLibvirtNetwork } from "../../provider/libvirt/import";
import { DhcpRange, VirtualNetwork } from "../../sdk";
import { fromLibvirtXml } from "../../sdk/libvirt";
import { findOp, findResource, TestStack } from "../engine/engine";
import { guestAdd, guestDel, guestDhcp, guestExec, hostExec, LabHost, labStatus } from "../lab/lab";
import { Libvirtd, libvirtdStart, libvirtdStop, virsh } from "../lab/libvirt";
import { meaning } from "../unit/libvirt/support";
import { captureUpstream, labHosts, repoPath, stackFor } from "./support";

// libvirt's default NAT network, in the lab's guest range, with a reservation and a DNS host.
const NAT_XML = `<network>
  <name>lvnat</name>
  <uuid>5f0c7a1e-91a0-4c5e-b7d2-3a9e0c1d2b44</uuid>
  <forward mode='nat'>
    <nat>
      <port start='1024' end='65535'/>
    </nat>
  </forward>
  <bridge name='lvbr0' stp='on' delay='0'/>
  <mac address='52:54:00:91:00:fe'/>
  <domain name='lv.test' localOnly='yes'/>
  <dns>
    <host ip='10.91.0.10'>
      <hostname>lvdb</hostname>
    </host>
  </dns>
  <ip address='10.91.0.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.91.0.100' end='10.91.0.149'>
        <lease expiry='1' unit='hours'/>
      </range>
      <host mac='52:54:00:91:00:01' name='lvweb' ip='10.91.0.150'/>
    </dhcp>
  </ip>
</network>
`;

/** Two lab hosts at least; a lab with more is kept as it is (changing the host count rebuilds the lab). */
async function labHostsAsIs(): Promise<LabHost[]> {
  let n = 2;
  try {
    n = Math.max(n, labStatus().hosts.length);
  } catch {
    // no lab yet: labHosts makes one
  }
  return labHosts(n);
}

function program(xml: string) {
  return async () => {
    const lv = fromLibvirtXml(xml);
    const net = new VirtualNetwork(lv.network.name, lv.network);
    for (const r of lv.ranges) new DhcpRange(`${lv.network.name}-${r.name}`, { network: net, ...r });
    return { bridgeName: net.bridgeName, cidr: net.cidr, warnings: lv.warnings };
  };
}

async function lookup(guest: string, name: string): Promise<string> {
  return (await guestExec(guest, ["busybox", "nslookup", name, "10.91.0.1"])).stdout;
}

describe("a network imported from libvirt XML, on a lab host through the engine path", function () {
  this.timeout(120_000);
  let h1: LabHost;
  let stack: TestStack;
  const guests: string[] = [];

  before(async () => {
    [h1] = await labHostsAsIs();
    stack = stackFor(h1);
  });
  after(async () => {
    for (const g of guests) await guestDel(g);
    await stack.destroy();
  });

  it("deploys the network and its DHCP range as the XML says, with no warnings", async () => {
    const r = await stack.up(program(NAT_XML));
    expect(findOp(r, "lvnat")!.op).to.equal("create");
    expect(findOp(r, "lvnat-range1")!.op).to.equal("create");
    expect(r.outputs).to.deep.include({ bridgeName: "lvbr0", cidr: "10.91.0.0/24", warnings: [] });
    const inputs = findResource(stack.state, "lvnat")!.inputs as Record<string, any>;
    expect(inputs.bridge).to.deep.include({ name: "lvbr0", stp: true, macAddress: "52:54:00:91:00:fe" });
  });

  it("gives the reserved guest its address and the gateway as router", async () => {
    await guestAdd("lvweb", "h1", "lvbr0", { mac: "52:54:00:91:00:01" });
    guests.push("lvweb");
    const lease = await guestDhcp("lvweb", { timeoutMs: 20000 });
    expect(lease.ip).to.equal("10.91.0.150");
    expect(lease.router).to.equal("10.91.0.1");
  });

  it("serves a dynamic guest from the range, and resolves the reservation's name and the DNS host", async () => {
    await guestAdd("lvdyn", "h1", "lvbr0");
    guests.push("lvdyn");
    const lease = await guestDhcp("lvdyn", { timeoutMs: 20000 });
    expect(Number(lease.ip.split(".")[3])).to.be.within(100, 149);
    expect(await lookup("lvdyn", "lvweb.lv.test")).to.include("10.91.0.150");
    expect(await lookup("lvdyn", "lvdb.lv.test")).to.include("10.91.0.10");
    expect(await lookup("lvdyn", "lvdb")).to.include("10.91.0.10");
  });

  it("masquerades egress: the internet sees the host's uplink address", async () => {
    const seen = await captureUpstream("icmp and dst host 198.51.100.1", () =>
      guestExec("lvweb", ["busybox", "ping", "-c", "1", "-W", "2", "198.51.100.1"]),
    );
    expect(seen).to.include(`${h1.uplinkAddress} > 198.51.100.1`);
  });
});

describe("examples/from-libvirt on a lab host, through the engine path", function () {
  this.timeout(120_000);
  let stack: TestStack;
  let dir: string;

  before(async () => {
    const [h1] = await labHostsAsIs();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "virtnet-from-libvirt-"));
    // The example's own sample, moved into the lab's range and names, plus one thing virtnet does not do.
    const xml = fs
      .readFileSync(repoPath("examples/from-libvirt/default.xml"), "utf8")
      .replace("<name>default</name>", "<name>lvexample</name>")
      .replace("name='virbr0'", "name='lvbr1'")
      .replace(/192\.168\.122\./g, "10.91.1.")
      .replace("</network>", "  <bandwidth><inbound average='1000'/></bandwidth>\n</network>");
    fs.writeFileSync(path.join(dir, "lvexample.xml"), xml);
    stack = stackFor(h1, { "fromLibvirt:xmlFile": path.join(dir, "lvexample.xml") });
  });
  after(async () => {
    await stack.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("creates the network and range the XML file defines, and reports what it did not import", async () => {
    const example = repoPath("dist/examples/from-libvirt/index.js");
    const r = await stack.up(async () => {
      delete require.cache[require.resolve(example)];
      return { ...require(example) };
    });
    expect(findOp(r, "lvexample")!.op).to.equal("create");
    expect(findOp(r, "lvexample-range1")!.op).to.equal("create");
    expect(r.outputs).to.deep.include({ bridgeName: "lvbr1", gatewayIp: "10.91.1.1", cidr: "10.91.1.0/24" });
    expect(r.outputs.dhcpRanges).to.deep.equal(["10.91.1.2-10.91.1.254"]);
    expect(r.outputs.warnings).to.deep.equal([
      "<bandwidth>: element <bandwidth> is not supported by virtnet; ignored",
    ]);
    const range = findResource(stack.state, "lvexample-range1")!.outputs as Record<string, any>;
    expect(range.hosts).to.deep.equal([
      { mac: "52:54:00:6b:3c:58", ip: "10.91.1.20", hostname: "webserver" },
    ]);
  });
});

const FIXTURES = repoPath("tests/fixtures/libvirt");
// Not libvirt XML on purpose (virtnet's own reading of non-libvirt input).
const NOT_LIBVIRT = ["forward-mode-none", "unknown-elements"];

describe("libvirt itself defines virtnet's exported XML (libvirtd in a lab host)", function () {
  this.timeout(120_000);
  let d: Libvirtd;
  let startedHere = false;
  const defined: string[] = [];
  // Each exported fixture under its own name and bridge ("lvx<i>"), beside whatever else that libvirtd has.
  const fixtures = fs
    .readdirSync(FIXTURES)
    .filter((f) => f.endsWith(".xml") && !f.startsWith("invalid-"))
    .map((f) => f.slice(0, -4))
    .filter((n) => !NOT_LIBVIRT.includes(n))
    .sort();
  const exported = fixtures.map((name, i) => {
    const x = importLibvirtNetwork(fs.readFileSync(path.join(FIXTURES, `${name}.xml`), "utf8"));
    x.spec.name = `lvx${i}`;
    x.spec.bridge.name = `lvx${i}`;
    return { fixture: name, name: `lvx${i}`, xml: toLibvirtXml(x.spec, x.rangeSpecs, x.routeSpecs) };
  });

  before(async () => {
    await labHostsAsIs();
    d = await libvirtdStart("h2");
    startedHere = d.startMs > 0;
  });
  after(async () => {
    if (defined.length)
      await virsh(
        d,
        defined.map((n) => `net-undefine ${n}`),
      );
    if (startedHere) await libvirtdStop("h2");
  });

  it("virsh net-define accepts every exported network of the corpus", async () => {
    const dir = `${d.dir}/virtnet-export`;
    const write = await hostExec("h2", [
      "sh",
      "-c",
      // Positional parameters past $9 need braces.
      [
        'set -e; mkdir -p "$1"',
        ...exported.map((e, i) => `printf '%s' "\${${i + 2}}" > "$1/${e.name}.xml"`),
      ].join("\n"),
      "sh",
      dir,
      ...exported.map((e) => e.xml),
    ]);
    expect(write.code, write.stderr).to.equal(0);
    for (const e of exported) {
      const r = await virsh(d, `net-define ${dir}/${e.name}.xml`);
      expect(r.code, `${e.fixture}: ${r.stderr}\n${e.xml}`).to.equal(0);
      defined.push(e.name);
    }
  });

  it("libvirt's net-dumpxml of each imports without warnings and with the meaning virtnet exported", async () => {
    for (const e of exported) {
      const r = await virsh(d, `net-dumpxml ${e.name}`);
      expect(r.code, r.stderr).to.equal(0);
      const back = fromLibvirtXml(r.stdout);
      expect(back.warnings, `${e.fixture}:\n${r.stdout}`).to.deep.equal([]);
      expect(meaning(r.stdout), `${e.fixture}:\n${r.stdout}`).to.deep.equal(meaning(e.xml));
    }
  });
});
