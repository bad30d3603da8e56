import { expect } from "chai";
import { LibvirtXmlError } from "../../../provider/libvirt/errors";
import { fromLibvirtXml, LibvirtImport } from "../../../provider/libvirt/import";
import * as sdk from "../../../sdk/libvirt";
import type { DhcpRangeArgs } from "../../../sdk/dhcpRange";
import type { StaticRouteArgs } from "../../../sdk/staticRoute";
import type { VirtualNetworkArgs } from "../../../sdk/virtualNetwork";
import { expectGolden } from "../golden";
import { documentTree, invalidFixtures, Item, readFixture, validFixtures } from "./support";

function importError(xml: string): LibvirtXmlError {
  try {
    fromLibvirtXml(xml);
  } catch (e) {
    expect(e).to.be.instanceOf(LibvirtXmlError);
    return e as LibvirtXmlError;
  }
  throw new Error("the import should have failed");
}

const net = (body: string) => `<network><name>t</name>${body}</network>`;
const subnet = "<ip address='10.9.0.1' prefix='24'/>";

describe("libvirt XML import: the corpus", () => {
  for (const name of validFixtures())
    it(`${name}: virtnet arguments, warnings and notes as in the golden file`, () => {
      const result = fromLibvirtXml(readFixture(name));
      expectGolden(`libvirt/${name}.json`, JSON.stringify(result, null, 2) + "\n");
    });

  for (const name of invalidFixtures())
    it(`${name}: refused, each problem naming its element`, () => {
      const err = importError(readFixture(name));
      expectGolden(`libvirt/${name}.json`, JSON.stringify({ error: err.problems }, null, 2) + "\n");
      expect(err.message).to.equal(err.problems.join("\n"));
      for (const p of err.problems) expect(p).to.match(/^(<[a-z]|malformed XML|the root element is <)/);
    });
});

describe("libvirt XML import: mapping", () => {
  const cases: [string, string][] = [
    ["", "isolated"],
    ["<forward/>", "nat"],
    ["<forward mode='none'/>", "isolated"],
    ["<forward mode='nat'/>", "nat"],
    ["<forward mode='route'/>", "route"],
    ["<forward mode='open'/>", "open"],
  ];
  for (const [forward, mode] of cases)
    it(`${forward || "no <forward>"} is mode ${mode}`, () => {
      expect(fromLibvirtXml(net(forward + subnet)).network.mode).to.equal(mode);
    });

  it("takes the forward device from dev, or from the one <interface> libvirt lists", () => {
    expect(fromLibvirtXml(net(`<forward mode='nat' dev='eth1'/>${subnet}`)).network.forwardDevice).to.equal(
      "eth1",
    );
    const r = fromLibvirtXml(net(`<forward mode='route'><interface dev='eth2'/></forward>${subnet}`));
    expect(r.network.forwardDevice).to.equal("eth2");
    expect(r.warnings).to.deep.equal([]);
  });

  const leases: [string, string | undefined][] = [
    ["", undefined],
    ["<lease expiry='7200' unit='seconds'/>", "7200"],
    ["<lease expiry='30' unit='minutes'/>", "30m"],
    ["<lease expiry='30'/>", "30m"], // libvirt's default unit is minutes
    ["<lease expiry='2' unit='hours'/>", "2h"],
    ["<lease expiry='0'/>", "infinite"],
  ];
  for (const [lease, leaseTime] of leases)
    it(`${lease || "no <lease>"} is leaseTime ${leaseTime ?? "absent (virtnet's 1h)"}`, () => {
      const xml = net(
        `<ip address='10.9.0.1' prefix='24'><dhcp><range start='10.9.0.10' end='10.9.0.20'>${lease}</range></dhcp></ip>`,
      );
      expect(fromLibvirtXml(xml).ranges[0].leaseTime).to.equal(leaseTime);
    });

  it("names ranges range1, range2, ... and puts the network's reservations on range1", () => {
    const r = fromLibvirtXml(readFixture("ranges-leases"));
    expect(r.ranges.map((x) => x.name)).to.deep.equal([
      "range1",
      "range2",
      "range3",
      "range4",
      "range5",
      "range6",
    ]);
    expect(r.ranges[0].hosts!.map((h) => h.ip)).to.deep.equal([
      "10.90.0.201",
      "10.90.0.202",
      "10.90.0.203",
      "10.90.0.15",
    ]);
    expect(r.ranges.slice(1).every((x) => x.hosts === undefined)).to.equal(true);
  });

  it("keeps libvirt's defaults where virtnet's differ: STP on (so a 2 s forward delay), route metric 1", () => {
    const r = fromLibvirtXml(
      net(`<forward mode='route'/>${subnet}<route address='10.8.0.0' prefix='16' gateway='10.9.0.2'/>`),
    );
    expect(r.network.bridge.stp).to.equal(true);
    // ...and the forward delay that the kernel runs with STP: never below 2 s.
    expect(r.network.bridge.delay).to.equal(2);
    expect(fromLibvirtXml(net(`<bridge stp='on' delay='0'/>`)).network.bridge.delay).to.equal(2);
    expect(fromLibvirtXml(net(`<bridge stp='on' delay='5'/>`)).network.bridge.delay).to.equal(5);
    expect(fromLibvirtXml(net(`<bridge stp='off' delay='0'/>`)).network.bridge.delay).to.equal(0);
    expect(r.routes).to.deep.equal([{ destination: "10.8.0.0/16", gateway: "10.9.0.2", metric: 1 }]);
  });

  it("imports IPv6: the subnet, IPv6 masquerading, DHCPv6 ranges and their reservations, IPv6 routes", () => {
    const r = fromLibvirtXml(readFixture("dual-stack"));
    expect(r.network.ipv4).to.deep.equal({ cidr: "10.70.0.0/24", gateway: "10.70.0.1" });
    expect(r.network.ipv6).to.deep.equal({ cidr: "fd00:70::/64", gateway: "fd00:70::1" });
    expect(r.network.nat).to.deep.equal({ ipv6: true });
    expect(r.ranges.map((x) => [x.start, x.hosts?.length])).to.deep.equal([
      ["10.70.0.100", 1],
      ["fd00:70::100", 3],
    ]);
    expect(r.ranges[1].hosts).to.deep.equal([
      { duid: "0:4:7e:7d:f0:7d:a8:bc:c5:d2:13:32:11:ed:16:ea:84:63", ip: "fd00:70::5" },
      { ip: "fd00:70::6", hostname: "printer" },
      { duid: "0:3:0:1:52:54:0:70:0:7", ip: "fd00:70::7", hostname: "vm7.example.com" },
    ]);
    expect(r.routes[1]).to.deep.equal({ destination: "fd00:71::/64", gateway: "fd00:70::2", metric: 2 });
    expect(r.warnings).to.deep.equal([]);
  });

  it("imports IPv6 reservations without a range as static-only DHCPv6, and refuses a mac on them", () => {
    const v6 = (hosts: string) =>
      net(`<ip family='ipv6' address='fd00:9::1' prefix='64'><dhcp>${hosts}</dhcp></ip>`);
    const r = fromLibvirtXml(v6(`<host id='00:03:00:01:52:54:00:00:00:01' ip='fd00:9::10'/>`));
    expect(r.ranges).to.deep.equal([
      { name: "range1", hosts: [{ duid: "00:03:00:01:52:54:00:00:00:01", ip: "fd00:9::10" }] },
    ]);
    expect(importError(v6(`<host mac='52:54:00:00:00:01' ip='fd00:9::10'/>`)).problems).to.deep.equal([
      "<host mac='52:54:00:00:00:01' ip='fd00:9::10'>: an IPv6 <host> names its client by id (DUID) or name, not by mac (libvirt refuses it too)",
    ]);
    expect(importError(v6(`<host ip='fd00:9::10'/>`)).problems[0]).to.include(
      "needs id (the client's DUID) or name",
    );
    expect(importError(v6(`<host id='zz:03' ip='fd00:9::10'/>`)).problems[0]).to.match(
      /^<host id='zz:03' ip='fd00:9::10'>: "zz:03" is not a DUID .*\(virtnet DhcpRange range1 hosts\[0\]\.duid\)$/,
    );
  });

  it("takes an IPv6 address without family or prefix as IPv6 with libvirt's /64", () => {
    const r = fromLibvirtXml(readFixture("ipv6-only"));
    expect(r.network.ipv6).to.deep.equal({ cidr: "2001:db8:51::/64", gateway: "2001:db8:51::1" });
    expect(r.network.ipv4).to.equal(undefined);
  });

  it("imports SRV and TXT records, domain-only forwarders and forwardPlainNames", () => {
    const r = fromLibvirtXml(readFixture("dns-records"));
    expect(r.network.dns!.srv).to.deep.equal([
      {
        service: "ldap",
        protocol: "tcp",
        domain: "dns.test",
        target: "dir.dns.test",
        port: 389,
        priority: 10,
        weight: 10,
      },
      { service: "sip", protocol: "udp" },
    ]);
    expect(r.network.dns!.txt).to.deep.equal([{ name: "info", value: "virtnet test network" }]);
    expect(r.warnings.filter((w) => w.startsWith("<forwarder ") || w.startsWith("<dns "))).to.deep.equal([]);
    expect(r.network.dns!.forwardPlainNames).to.equal(true);
    expect(r.network.dns!.forwarders).to.deep.equal([
      { address: "2001:db8::53" },
      { address: "192.0.2.53", domain: "internal.example" },
      { domain: "blackhole.example" },
    ]);
  });

  it("reads CNAME and MX records from <dnsmasq:options> under any prefix; other lines are dnsmasqOptions", () => {
    const opts = (prefix: string, values: string[]) =>
      `<${prefix}:options xmlns:${prefix}='http://libvirt.org/schemas/network/dnsmasq/1.0'>` +
      values.map((v) => `<${prefix}:option value='${v}'/>`).join("") +
      `</${prefix}:options>`;
    const r = fromLibvirtXml(
      net(
        subnet +
          opts("dm", [
            "cname=a.t,b.t,web.t",
            "mx-host=t,mail.t",
            "cname=c.t,web.t,600", // a TTL: not a record virtnet keeps as it is
            "mx-host=t,5", // no target host: dnsmasq would answer with its own host name
            "cname=d.t, web.t",
          ]),
      ),
    );
    expect(r.network.dns).to.deep.equal({
      cname: [
        { name: "a.t", target: "web.t" },
        { name: "b.t", target: "web.t" },
      ],
      mx: [{ domain: "t", target: "mail.t" }],
    });
    expect(r.warnings).to.deep.equal([]);
    expect(r.network.dnsmasqOptions).to.deep.equal([
      "cname=c.t,web.t,600",
      "mx-host=t,5",
      "cname=d.t, web.t",
    ]);
    // An element in another namespace that happens to be called options is not libvirt's passthrough.
    const other = fromLibvirtXml(
      net(subnet + "<x:options xmlns:x='urn:other'><x:option value='cname=a,b'/></x:options>"),
    );
    expect(other.network.dns).to.equal(undefined);
    expect(other.warnings).to.deep.equal([
      "<x:options>: element <x:options> is not supported by virtnet; ignored",
    ]);
  });

  it("notes the uuid instead of warning about it", () => {
    const r = fromLibvirtXml(readFixture("default"));
    expect(r.warnings).to.deep.equal([]);
    expect(r.notes.some((n) => n.startsWith("<uuid>"))).to.equal(true);
  });
});

describe("libvirt XML import: errors", () => {
  it("names the element of a bad address", () => {
    const err = importError(net("<forward mode='nat'/><ip address='10.0.0.300' prefix='24'/>"));
    expect(err.problems).to.deep.equal([
      "<ip address='10.0.0.300' prefix='24'>: address '10.0.0.300' is not an IPv4 address",
    ]);
  });

  it("names the element behind each virtnet validation error, with virtnet's property", () => {
    const err = importError(net("<forward mode='nat'/><ip address='10.9.0.0' prefix='24'/>"));
    expect(err.problems).to.deep.equal([
      "<ip address='10.9.0.0' prefix='24'>: 10.9.0.0 is the network address of 10.9.0.0/24 (virtnet ipv4.gateway)",
    ]);
    const nat = importError(net("<forward mode='nat'/>"));
    expect(nat.problems[0]).to.match(/^<forward mode='nat'>: mode "nat" needs an address/);
  });

  it("imports forward mode bridge as mode bridge over the named bridge, with nothing of virtnet's on it", () => {
    const r = fromLibvirtXml(readFixture("bridge-mode"));
    expect(r.network).to.deep.equal({ name: "hostbridge", mode: "bridge", bridge: { name: "br0" } });
    expect(r.warnings).to.deep.equal([]);
    const noName = importError(net("<forward mode='bridge'/>"));
    expect(noName.problems[0]).to.match(/is required with mode "bridge".*\(virtnet bridge\.name\)$/);
  });

  const malformed: [string, unknown, RegExp][] = [
    ["an empty document", "", /^malformed XML: the document is empty$/],
    [
      "unclosed elements",
      "<network><name>x</network>",
      /^malformed XML at line 1, column \d+: Expected closing tag 'name'/,
    ],
    ["two roots", "<network/><network/>", /^malformed XML: more than one root element/],
    ["text only", "just text", /^malformed XML/],
    ["not a string", 42, /must be a string/],
    ["another root", "<pool type='dir'/>", /^the root element is <pool>, not <network>/],
  ];
  for (const [what, xml, message] of malformed)
    it(`refuses ${what}`, () => {
      expect(importError(xml as string).message).to.match(message);
    });

  it("refuses a second <name> or <bridge>, naming it", () => {
    expect(importError(net("<name>u</name>")).problems).to.deep.equal([
      "<name>u</name>: more than one <name> in <network>",
    ]);
  });
});

// What virtnet imports: element paths with their attributes. Everything else in a document must be named by a
// warning (or, for the uuid and connections, a note).
const SUPPORTED: Record<string, string[]> = {
  network: ["ipv6"],
  "network/name": [],
  "network/bridge": ["name", "stp", "delay"],
  "network/mtu": ["size"],
  "network/mac": ["address"],
  "network/domain": ["name", "localOnly"],
  "network/forward": ["mode", "dev"],
  "network/forward/interface": ["dev"],
  "network/forward/nat": ["ipv6"],
  "network/forward/nat/address": ["start", "end"],
  "network/forward/nat/port": ["start", "end"],
  "network/dns": ["enable", "forwardPlainNames"],
  "network/dns/forwarder": ["addr", "domain"],
  "network/dns/host": ["ip"],
  "network/dns/host/hostname": [],
  "network/dns/srv": ["service", "protocol", "domain", "target", "port", "priority", "weight"],
  "network/dns/txt": ["name", "value"],
  "network/ip": ["address", "netmask", "prefix", "family"],
  "network/ip/dhcp": [],
  "network/ip/dhcp/range": ["start", "end"],
  "network/ip/dhcp/range/lease": ["expiry", "unit"],
  "network/ip/dhcp/host": ["mac", "id", "name", "ip"],
  "network/ip/tftp": ["root"],
  "network/ip/dhcp/bootp": ["file", "server"],
  "network/route": ["family", "address", "prefix", "netmask", "gateway", "metric"],
  "network/dnsmasq:options": [],
  "network/dnsmasq:options/dnsmasq:option": ["value"],
};
/** Attributes supported with one value only: another value must be reported. */
const ONLY: Record<string, Record<string, string>> = {
  network: { ipv6: "no" },
};
const NOTED: Record<string, string[]> = { "network/uuid": [], network: ["connections"] };
const WITH_TEXT = ["network/name", "network/uuid", "network/dns/host/hostname"];

function isAbout(message: string, item: Item): boolean {
  return (
    message.startsWith(`<${item.name}`) &&
    Object.entries(item.attrs)
      .filter(([k]) => !k.startsWith("xmlns"))
      .every(([k, v]) => message.includes(`${k}='${v}'`))
  );
}

function aboutElement(messages: string[], item: Item): boolean {
  return messages.some((m) => isAbout(m, item));
}

function aboutAttribute(messages: string[], item: Item, k: string, v: string): boolean {
  return messages.some(
    (m) => isAbout(m, item) && (m.includes(`: attribute ${k}='${v}'`) || m.includes(`: ${k}='${v}'`)),
  );
}

function unreported(r: LibvirtImport, root: Item): string[] {
  const missing: string[] = [];
  const isV6 = (i: Item) => i.attrs.family === "ipv6" || (i.attrs.address ?? "").includes(":");
  const firstV4 = root.children.find((c) => c.name === "ip" && !isV6(c));
  const firstV6 = root.children.find((c) => c.name === "ip" && isV6(c));
  const check = (item: Item) => {
    const wholeReported =
      !(item.path in SUPPORTED || item.path in NOTED) ||
      (item.path === "network/ip" && item !== firstV4 && item !== firstV6);
    if (item.path === "network/uuid") {
      if (!aboutElement(r.notes, item)) missing.push(`${item.path} (note)`);
      return;
    }
    if (wholeReported) {
      if (!aboutElement(r.warnings, item)) missing.push(item.path);
      return;
    }
    for (const [k, v] of Object.entries(item.attrs)) {
      if (k.startsWith("xmlns")) continue;
      if ((NOTED[item.path] ?? []).includes(k)) {
        if (!r.notes.some((n) => isAbout(n, item) && n.includes(`: ${k} `)))
          missing.push(`${item.path}@${k} (note)`);
        continue;
      }
      const only = ONLY[item.path]?.[k];
      if ((SUPPORTED[item.path] ?? []).includes(k) && (only === undefined || only === v)) continue;
      if (!aboutAttribute([...r.warnings, ...r.notes], item, k, v)) missing.push(`${item.path}@${k}`);
    }
    if (
      item.text &&
      !WITH_TEXT.includes(item.path) &&
      !r.warnings.some((w) => isAbout(w, item) && w.includes(`"${item.text}"`))
    )
      missing.push(`${item.path} text`);
    // Reservations virtnet cannot keep: IPv4 ones by name only (IPv6 ones are by id, name or both).
    const v6Hosts =
      item.path === "network/ip/dhcp" && item === firstV6?.children.find((c) => c.name === "dhcp");
    for (const c of item.children) {
      if (c.name === "host" && item.path === "network/ip/dhcp" && !v6Hosts && c.attrs.mac === undefined) {
        if (!aboutElement(r.warnings, c)) missing.push(`${c.path} (no range)`);
      } else check(c);
    }
  };
  check(root);
  return missing;
}

describe("libvirt XML import: nothing is dropped silently", () => {
  for (const name of validFixtures())
    it(`${name}: every element and attribute is imported or named by a warning`, () => {
      const xml = readFixture(name);
      expect(unreported(fromLibvirtXml(xml), documentTree(xml))).to.deep.equal([]);
    });

  it("names each unsupported element once, with its content, not each of its children", () => {
    const r = fromLibvirtXml(readFixture("unsupported"));
    expect(r.warnings.filter((w) => w.includes("<vlan") || w.includes("<tag"))).to.deep.equal([]);
    expect(r.warnings.filter((w) => w.startsWith("<portgroup "))).to.have.length(1);
  });
});

describe("libvirt XML import: SDK", () => {
  it("fromLibvirtXml in the SDK returns the provider's import, and its errors are LibvirtXmlErrors", () => {
    const xml = readFixture("nat-full");
    expect(sdk.fromLibvirtXml(xml)).to.deep.equal(fromLibvirtXml(xml));
    expect(() => sdk.fromLibvirtXml("<domain/>")).to.throw(sdk.LibvirtXmlError, /not <network>/);
  });

  it("returns arguments that type-check as VirtualNetwork, DhcpRange and StaticRoute arguments", () => {
    const lv = sdk.fromLibvirtXml(readFixture("nat-full"));
    // Compile-time checks: these assignments are what a program writes.
    const netArgs: VirtualNetworkArgs = { connection: { host: "192.0.2.10" }, ...lv.network };
    const rangeArgs: Omit<DhcpRangeArgs, "network">[] = lv.ranges.map((r) => ({ ...r }));
    const routeArgs: Omit<StaticRouteArgs, "network">[] = lv.routes.map((r) => ({ ...r }));
    expect(netArgs.mode).to.equal("nat");
    expect(rangeArgs).to.have.length(1);
    expect(routeArgs).to.have.length(2);
  });
});

describe("libvirt XML import: names of Object's own properties are values like any other", () => {
  for (const [what, body, message] of [
    ["a forward mode", "<forward mode='constructor'/>", /mode 'constructor' is not a libvirt forward mode/],
    [
      "a lease unit",
      "<ip address='10.9.0.1' prefix='24'><dhcp><range start='10.9.0.10' end='10.9.0.20'><lease expiry='5' unit='toString'/></range></dhcp></ip>",
      /unit must be 'seconds', 'minutes' or 'hours', not 'toString'/,
    ],
    ["an stp value", "<bridge stp='hasOwnProperty'/>", /stp must be 'on' or 'off', not 'hasOwnProperty'/],
  ] as [string, string, RegExp][])
    it(`refuses __proto__-like ${what}`, () => {
      expect(importError(net(body)).message).to.match(message);
    });
});
