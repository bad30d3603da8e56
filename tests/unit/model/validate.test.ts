import { expect } from "chai";
import { buildNetworkSpec, NetworkInputs } from "../../../provider/model/network";
import { UNKNOWN } from "../../../provider/model/validation";

function errorsOf(inputs: NetworkInputs, name = "lab") {
  return buildNetworkSpec(inputs, name).errors;
}

function expectError(inputs: NetworkInputs, property: string, reason: RegExp, name = "lab") {
  const errors = errorsOf(inputs, name);
  const hit = errors.find((e) => e.property === property);
  expect(hit, `expected an error on ${property}, got ${JSON.stringify(errors)}`).to.not.equal(undefined);
  expect(hit!.reason).to.match(reason);
}

const ipv4 = { cidr: "10.50.1.0/24" };

describe("network input validation", () => {
  it("accepts a minimal nat network and fills defaults like libvirt", () => {
    const r = buildNetworkSpec({ mode: "nat", ipv4 }, "lab");
    expect(r.errors).to.deep.equal([]);
    expect(r.spec!.ipv4).to.include({ gateway: "10.50.1.1", netmask: "255.255.255.0", prefixLength: 24 });
    expect(r.spec!.bridge).to.include({ name: "vn-lab", stp: false, delay: 0 });
    expect(r.spec!.nat.portRange).to.deep.equal({ start: 1024, end: 65535 });
  });

  const cases: [string, NetworkInputs, string, RegExp, string?][] = [
    ["bad CIDR", { mode: "nat", ipv4: { cidr: "10.50.1.0/33" } }, "ipv4.cidr", /not an IPv4 CIDR/],
    ["not an address", { mode: "nat", ipv4: { cidr: "10.50.1/24" } }, "ipv4.cidr", /not an IPv4 CIDR/],
    [
      "host bits set",
      { mode: "nat", ipv4: { cidr: "10.50.1.5/24" } },
      "ipv4.cidr",
      /host bits.*10\.50\.1\.0\/24/,
    ],
    [
      "gateway outside",
      { mode: "nat", ipv4: { cidr: "10.50.1.0/24", gateway: "10.50.2.1" } },
      "ipv4.gateway",
      /outside/,
    ],
    [
      "gateway = network",
      { mode: "nat", ipv4: { cidr: "10.50.1.0/24", gateway: "10.50.1.0" } },
      "ipv4.gateway",
      /network address/,
    ],
    [
      "gateway = broadcast",
      { mode: "nat", ipv4: { cidr: "10.50.1.0/24", gateway: "10.50.1.255" } },
      "ipv4.gateway",
      /broadcast/,
    ],
    ["name charset", { mode: "nat", ipv4 }, "name", /only letters/, "lab;rm"],
    ["name ..", { mode: "nat", ipv4 }, "name", /not allowed/, ".."],
    ["name .", { mode: "nat", ipv4 }, "name", /not allowed/, "."],
    ["name leading dash", { mode: "nat", ipv4 }, "name", /must not start/, "-x"],
    ["name newline", { mode: "nat", ipv4 }, "name", /control characters/, "lab\nx"],
    ["bridge charset", { mode: "nat", ipv4, bridge: { name: "br 0" } }, "bridge.name", /only letters/],
    [
      "bridge too long",
      { mode: "nat", ipv4, bridge: { name: "a234567890123456" } },
      "bridge.name",
      /at most 15/,
    ],
    ["bridge ..", { mode: "nat", ipv4, bridge: { name: ".." } }, "bridge.name", /not allowed/],
    ["NUL anywhere", { mode: "nat", ipv4, domain: { name: "lab\u0000.test" } }, "domain.name", /control/],
    ["domain syntax", { mode: "nat", ipv4, domain: { name: "lab_test" } }, "domain.name", /DNS domain/],
    ["domain label", { mode: "nat", ipv4, domain: { name: "-lab.test" } }, "domain.name", /DNS domain/],
    [
      "dns host name",
      { mode: "nat", ipv4, dns: { hosts: [{ ip: "10.50.1.9", hostnames: ["ok", "no pe"] }] } },
      "dns.hosts[0].hostnames[1]",
      /not a valid host name/,
    ],
    [
      "dns host ip",
      { mode: "nat", ipv4, dns: { hosts: [{ ip: "10.50.1.999", hostnames: ["a"] }] } },
      "dns.hosts[0].ip",
      /not an IPv4 or IPv6/,
    ],
    [
      "forwarder",
      { mode: "nat", ipv4, dns: { forwarders: ["1.1.1.1; rm"] } },
      "dns.forwarders[0].address",
      /not an IPv4/,
    ],
    [
      "forwarder domain",
      { mode: "nat", ipv4, dns: { forwarders: [{ address: "1.1.1.1", domain: "a/b" }] } },
      "dns.forwarders[0].domain",
      /DNS domain/,
    ],
    ["mtu low", { mode: "nat", ipv4, bridge: { mtu: 67 } }, "bridge.mtu", /68 to 65535/],
    ["mtu high", { mode: "nat", ipv4, bridge: { mtu: 65536 } }, "bridge.mtu", /68 to 65535/],
    ["mtu fraction", { mode: "nat", ipv4, bridge: { mtu: 1500.5 } }, "bridge.mtu", /integer/],
    [
      "mac multicast",
      { mode: "nat", ipv4, bridge: { macAddress: "01:00:5e:00:00:01" } },
      "bridge.macAddress",
      /unicast/,
    ],
    [
      "mac syntax",
      { mode: "nat", ipv4, bridge: { macAddress: "52:54:00:zz:00:01" } },
      "bridge.macAddress",
      /MAC address/,
    ],
    ["nat without address", { mode: "nat" }, "ipv4", /needs an address/],
    ["route without address", { mode: "route" }, "ipv4", /needs an address/],
    ["ipv6 CIDR", { mode: "route", ipv6: { cidr: "fd00:50:1::/129" } }, "ipv6.cidr", /not an IPv6 CIDR/],
    [
      "ipv6 host bits",
      { mode: "route", ipv6: { cidr: "fd00:50:1::5/64" } },
      "ipv6.cidr",
      /host bits.*fd00:50:1::\/64/,
    ],
    [
      "ipv6 gateway outside",
      { mode: "route", ipv6: { cidr: "fd00:50:1::/64", gateway: "fd00:50:2::1" } },
      "ipv6.gateway",
      /outside/,
    ],
    [
      "ipv6 gateway anycast",
      { mode: "route", ipv6: { cidr: "fd00:50:1::/64", gateway: "fd00:50:1::" } },
      "ipv6.gateway",
      /anycast/,
    ],
    [
      "dns.forwardPlainNames type",
      { mode: "nat", ipv4, dns: { forwardPlainNames: "no" as unknown as boolean } },
      "dns.forwardPlainNames",
      /true or false/,
    ],
    [
      "dns.etcHosts type",
      { mode: "nat", ipv4, dns: { etcHosts: 1 as unknown as boolean } },
      "dns.etcHosts",
      /true or false/,
    ],
    [
      "forwarder with neither",
      { mode: "nat", ipv4, dns: { forwarders: [{}] } },
      "dns.forwarders[0].address",
      /required/,
    ],
    [
      "nat.ipv6 type",
      { mode: "nat", ipv4, nat: { ipv6: "yes" as unknown as boolean } },
      "nat.ipv6",
      /true or false/,
    ],
    [
      "srv protocol",
      { mode: "nat", ipv4, dns: { srv: [{ service: "ldap", protocol: "sctp" }] } },
      "dns.srv[0].protocol",
      /tcp/,
    ],
    [
      "srv service",
      { mode: "nat", ipv4, dns: { srv: [{ service: "_ldap", protocol: "tcp" }] } },
      "dns.srv[0].service",
      /service name/,
    ],
    [
      "srv port without target",
      { mode: "nat", ipv4, dns: { srv: [{ service: "ldap", protocol: "tcp", port: 389 }] } },
      "dns.srv[0].target",
      /required/,
    ],
    [
      "txt quote",
      { mode: "nat", ipv4, dns: { txt: [{ name: "a.lab.test", value: 'x"; dhcp-script=/tmp/x' }] } },
      "dns.txt[0].value",
      /printable/,
    ],
    [
      "txt newline",
      { mode: "nat", ipv4, dns: { txt: [{ name: "a.lab.test", value: "x\ndhcp-script=/tmp/x" }] } },
      "dns.txt[0].value",
      /control/,
    ],
    [
      "cname name",
      { mode: "nat", ipv4, dns: { cname: [{ name: "www lab", target: "web" }] } },
      "dns.cname[0].name",
      /not a DNS name/,
    ],
    [
      "cname to itself",
      { mode: "nat", ipv4, dns: { cname: [{ name: "www", target: "WWW" }] } },
      "dns.cname[0].target",
      /the name itself/,
    ],
    [
      "cname twice",
      {
        mode: "nat",
        ipv4,
        dns: {
          cname: [
            { name: "www", target: "web" },
            { name: "www", target: "web2" },
          ],
        },
      },
      "dns.cname[1].name",
      /has a CNAME already/,
    ],
    [
      "cname beside an address",
      {
        mode: "nat",
        ipv4,
        dns: { hosts: [{ ip: "10.50.1.10", hostnames: ["www"] }], cname: [{ name: "www", target: "web" }] },
      },
      "dns.cname[0].name",
      /has an address in dns.hosts/,
    ],
    [
      "mx target",
      { mode: "nat", ipv4, dns: { mx: [{ domain: "lab.test", target: "mail;x" }] } },
      "dns.mx[0].target",
      /not a host name/,
    ],
    [
      "mx preference",
      { mode: "nat", ipv4, dns: { mx: [{ domain: "lab.test", target: "mail", preference: 70000 }] } },
      "dns.mx[0].preference",
      /0 to 65535/,
    ],
    ["unknown mode", { mode: "bridged", ipv4 }, "mode", /not one of nat, route, open, isolated/],
    ["missing mode", { ipv4 }, "mode", /required/],
    [
      "nat on route",
      { mode: "route", ipv4, nat: { portRange: { start: 1, end: 2 } } },
      "nat",
      /only to mode "nat"/,
    ],
    [
      "nat ports order",
      { mode: "nat", ipv4, nat: { portRange: { start: 3000, end: 2000 } } },
      "nat.portRange",
      /after/,
    ],
    [
      "nat address",
      { mode: "nat", ipv4, nat: { addressRange: { start: "x", end: "198.19.0.1" } } },
      "nat.addressRange.start",
      /not an IPv4/,
    ],
    [
      "forward device on isolated",
      { mode: "isolated", ipv4, forwardDevice: "eth0" },
      "forwardDevice",
      /only to modes/,
    ],
    [
      "forward device syntax",
      { mode: "nat", ipv4, forwardDevice: "eth0;x" },
      "forwardDevice",
      /only letters/,
    ],
    [
      "stp type",
      { mode: "nat", ipv4, bridge: { stp: "yes" as unknown as boolean } },
      "bridge.stp",
      /true or false/,
    ],
    ["delay range", { mode: "nat", ipv4, bridge: { delay: 31 } }, "bridge.delay", /0 to 30/],
    [
      "delay below STP's minimum",
      { mode: "nat", ipv4, bridge: { stp: true, delay: 0 } },
      "bridge.delay",
      /2 to 30/,
    ],
  ];
  for (const [title, inputs, property, reason, name] of cases) {
    it(`rejects ${title} on ${property}`, () => expectError(inputs, property, reason, name));
  }

  it("accepts mode nat with only an IPv6 subnet: IPv6 is routed, masqueraded only with nat.ipv6", () => {
    const r = buildNetworkSpec({ mode: "nat", ipv6: { cidr: "fd00:50:1::/64" } }, "lab");
    expect(r.errors).to.deep.equal([]);
    expect(r.spec!.nat.ipv6).to.equal(undefined);
  });

  it("takes a forwarder with a domain alone, plain names and /etc/hosts as booleans", () => {
    const r = buildNetworkSpec(
      {
        mode: "nat",
        ipv4,
        dns: { forwarders: [{ domain: "corp.test" }], forwardPlainNames: false, etcHosts: true },
      },
      "lab",
    );
    expect(r.errors).to.deep.equal([]);
    expect(r.spec!.dns).to.deep.include({
      forwarders: [{ domain: "corp.test" }],
      forwardPlainNames: false,
      etcHosts: true,
    });
    // The defaults leave no trace in the spec (records from before them stay equal).
    const d = buildNetworkSpec(
      { mode: "nat", ipv4, dns: { forwardPlainNames: true, etcHosts: false } },
      "lab",
    );
    expect(d.spec!.dns).to.deep.equal({ enabled: true, forwarders: [], hosts: [] });
  });

  it("takes dnsmasqOptions one per entry, refusing what virtnet owns, each error naming the option", () => {
    const ok = buildNetworkSpec(
      { mode: "nat", ipv4, dnsmasqOptions: ["log-queries", "--cname=a.t,b.t"] },
      "lab",
    );
    expect(ok.errors).to.deep.equal([]);
    expect(ok.spec!.dnsmasqOptions).to.deep.equal(["log-queries", "cname=a.t,b.t"]);
    const owned = [
      "conf-file=/tmp/x",
      "conf-dir=/etc/dnsmasq.d",
      "pid-file=/run/x.pid",
      "dhcp-leasefile=/tmp/l",
      "dhcp-script=/bin/sh",
      "interface=eth0",
      "except-interface=eth1",
      "listen-address=0.0.0.0",
      "bind-dynamic",
      "user=root",
      "group=root",
      "--interface=eth0",
    ];
    const errors = errorsOf({ mode: "nat", ipv4, dnsmasqOptions: owned });
    expect(errors.map((e) => e.property)).to.deep.equal(owned.map((_, i) => `dnsmasqOptions[${i}]`));
    errors.forEach((e, i) => expect(e.reason).to.include(owned[i].replace(/^--/, "").split("=")[0]));
    expectError(
      { mode: "nat", ipv4, dnsmasqOptions: ["log-queries\nconf-file=/tmp/x"] },
      "dnsmasqOptions[0]",
      /control characters such as newline/,
    );
    expectError(
      { mode: "nat", ipv4, dnsmasqOptions: ["a b=c"] },
      "dnsmasqOptions[0]",
      /not a dnsmasq option/,
    );
    expectError(
      { mode: "nat", ipv4, dnsmasqOptions: "log-queries" as unknown as string[] },
      "dnsmasqOptions",
      /list/,
    );
  });

  it("takes network boot inputs (tftp.root, bootp.file and server) and refuses bad ones by property", () => {
    const ok = buildNetworkSpec(
      { mode: "nat", ipv4, tftp: { root: "/srv/tftp/" }, bootp: { file: "pxelinux.0", server: "10.50.1.2" } },
      "lab",
    );
    expect(ok.errors).to.deep.equal([]);
    expect(ok.spec).to.deep.include({
      tftp: { root: "/srv/tftp" },
      bootp: { file: "pxelinux.0", server: "10.50.1.2" },
    });
    expectError({ mode: "nat", ipv4, tftp: { root: "srv/tftp" } }, "tftp.root", /absolute/);
    expectError({ mode: "nat", ipv4, tftp: { root: "/srv/../etc" } }, "tftp.root", /absolute/);
    expectError({ mode: "nat", ipv4, tftp: { root: "/srv/a b" } }, "tftp.root", /absolute/);
    expectError({ mode: "route", ipv6: { cidr: "fd00::/64" }, tftp: { root: "/srv" } }, "tftp", /needs ipv4/);
    expectError({ mode: "nat", ipv4, bootp: { file: "a,b" } }, "bootp.file", /boot file/);
    expectError({ mode: "nat", ipv4, bootp: { file: "a", server: "x" } }, "bootp.server", /IPv4/);
  });

  it("gives an STP bridge the kernel's minimum forward delay of 2 s", () => {
    expect(buildNetworkSpec({ mode: "nat", ipv4, bridge: { stp: true } }, "lab").spec!.bridge).to.include({
      stp: true,
      delay: 2,
    });
  });

  it("tolerates preview unknowns and builds nothing from them", () => {
    const r = buildNetworkSpec({ mode: UNKNOWN, ipv4: { cidr: UNKNOWN } }, "lab");
    expect(r.errors).to.deep.equal([]);
    expect(r.spec).to.equal(undefined);
    const r2 = buildNetworkSpec({ mode: "nat", ipv4: { cidr: "10.50.1.0/24", gateway: UNKNOWN } }, UNKNOWN);
    expect(r2.errors).to.deep.equal([]);
  });

  it("reports every problem at once, each under its property", () => {
    const errors = errorsOf(
      { mode: "nat", ipv4: { cidr: "10.50.1.0/24", gateway: "10.9.9.9" }, bridge: { mtu: 1 } },
      "..",
    );
    expect(errors.map((e) => e.property).sort()).to.deep.equal(["bridge.mtu", "ipv4.gateway", "name"]);
  });

  it("reports a bad gateway beside a bad cidr, in IPv4 and IPv6 (one check, not two rounds)", () => {
    const errors = errorsOf({
      mode: "nat",
      ipv4: { cidr: "10.50.1.0/33", gateway: "10.50.1.300" },
      ipv6: { cidr: "fd00:50:1::1/64", gateway: "fd00::zz" },
      nat: { ipv6: true },
    });
    expect(errors).to.deep.include.members([
      { property: "ipv4.cidr", reason: '"10.50.1.0/33" is not an IPv4 CIDR with a prefix from /1 to /30' },
      { property: "ipv4.gateway", reason: '"10.50.1.300" is not an IPv4 address' },
      { property: "ipv6.cidr", reason: "host bits are set: did you mean fd00:50:1::/64?" },
      { property: "ipv6.gateway", reason: '"fd00::zz" is not an IPv6 address' },
    ]);
    const cidrOnly = errorsOf({ mode: "nat", ipv4: { cidr: "10.50.1.1/24", gateway: "10.50.1.1" } });
    expect(cidrOnly.map((e) => e.property)).to.deep.equal(["ipv4.cidr"]);
  });
});
