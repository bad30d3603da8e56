import { expect } from "chai";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { networkPaths } from "../../../provider/naming";
import { buildRangeSpec } from "../../../provider/model/dhcpRange";
import { buildNetworkSpec, NetworkInputs, NetworkSpec } from "../../../provider/model/network";
import { renderDhcpHosts, renderDnsmasqConf, renderHostsFile } from "../../../provider/render/dnsmasq";
import { renderBridgeCreate } from "../../../provider/render/ip";
import { networkChainsOf, nftChainNames, renderNftables } from "../../../provider/render/nftables";
import { expectGolden } from "../golden";
import { firewallCases } from "../support/firewallCases";

function spec(inputs: NetworkInputs, name = "lab"): NetworkSpec {
  const r = buildNetworkSpec(inputs, name);
  expect(r.errors).to.deep.equal([]);
  return r.spec!;
}

const ipv4 = { cidr: "10.50.1.0/24" };
const ipv6 = { cidr: "fd00:50:1::/64" };

function dnsmasqAccepts(text: string): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "virtnet-dnsmasq-"));
  try {
    const file = path.join(dir, "dnsmasq.conf");
    fs.writeFileSync(file, text);
    const out = execFileSync("dnsmasq", ["--test", `--conf-file=${file}`], {
      encoding: "utf8",
      stdio: "pipe",
    });
    expect(out + "").to.not.match(/error/i);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// nft -c parses a ruleset without applying it; it needs CAP_NET_ADMIN, which the test runner has as root.
function nftAccepts(text: string): void {
  execFileSync("nft", ["-c", "-f", "-"], { input: text });
}

describe("nftables renderer (golden)", () => {
  for (const [name, inputs] of Object.entries(firewallCases)) {
    it(`renders ${name}`, () => {
      const text = renderNftables(spec(inputs));
      expect(text).to.be.a("string");
      expectGolden(`nftables/${name}.nft`, text!);
      nftAccepts(text!);
    });
  }

  it("renders no table at all for mode open", () => {
    expect(renderNftables(spec({ mode: "open", ipv4 }))).to.equal(null);
  });

  it("keeps the chain names nft identifiers whatever the network name, and apart", () => {
    const chains = (name: string) => nftChainNames(name);
    for (const name of ["my.net-1", "my_net_1", "1net", "x".repeat(64)])
      for (const c of chains(name)) expect(c, name).to.match(/^[a-zA-Z_][a-zA-Z0-9_]*\.[a-z]+$/);
    expect(chains("my.net-1")).to.not.deep.equal(chains("my_net_1"));
  });

  it("finds a network's chains in a listing of the shared table, and only its own", () => {
    const a = spec({ mode: "nat", ipv4 }, "lab");
    const b = spec({ mode: "isolated", ipv4: { cidr: "10.50.2.0/24" } }, "lab2");
    const table = (x: string) => x.replace(/^table inet virtnet \{\n/, "").replace(/\}\n$/, "");
    const listing = `table inet virtnet {\n${table(renderNftables(b)!)}\n${table(renderNftables(a)!)}}\n`;
    expect(networkChainsOf(listing, "lab")).to.equal(renderNftables(a));
    expect(networkChainsOf(listing, "lab2")).to.equal(renderNftables(b));
    expect(networkChainsOf(listing, "lab3")).to.equal(undefined);
    expect(networkChainsOf(undefined, "lab")).to.equal(undefined);
  });
});

describe("dnsmasq renderer (golden)", () => {
  const cases: Record<string, NetworkInputs> = {
    default: { mode: "nat", ipv4 },
    "domain-local-only": { mode: "nat", ipv4, domain: { name: "lab.test", localOnly: true } },
    forwarders: {
      mode: "route",
      ipv4,
      dns: { forwarders: ["198.51.100.53", { address: "2001:db8::53", domain: "corp.test" }] },
    },
    "srv-txt": {
      mode: "nat",
      ipv4,
      domain: { name: "lab.test", localOnly: true },
      dns: {
        srv: [
          { service: "ldap", protocol: "tcp", target: "db.lab.test", port: 389, priority: 10, weight: 5 },
          { service: "sip", protocol: "udp", domain: "voice.test" },
        ],
        txt: [{ name: "info.lab.test", value: "v=virtnet hello" }],
      },
    },
    "cname-mx": {
      mode: "nat",
      ipv4,
      domain: { name: "lab.test", localOnly: true },
      dns: {
        hosts: [{ ip: "10.50.1.10", hostnames: ["web", "mail"] }],
        cname: [
          { name: "www.lab.test", target: "web.lab.test" },
          { name: "www", target: "web" },
        ],
        mx: [
          { domain: "lab.test", target: "mail.lab.test", preference: 10 },
          { domain: "other.test", target: "mail.lab.test" },
        ],
      },
    },
    // No upstream but the forwarders it names: the host's resolvers are outside an isolated network.
    isolated: {
      mode: "isolated",
      ipv4,
      dns: { forwarders: [{ address: "10.50.1.53", domain: "corp.test" }] },
    },
    // libvirt's forwardPlainNames='no', the host's /etc/hosts served, and a domain sent to the host's resolvers.
    "plain-names-local-etc-hosts": {
      mode: "nat",
      ipv4,
      dns: { forwardPlainNames: false, etcHosts: true, forwarders: [{ domain: "corp.test" }] },
    },
    "dnsmasq-options": {
      mode: "nat",
      ipv4,
      dnsmasqOptions: ["log-queries", "dhcp-option=option:ntp-server,10.50.1.1"],
    },
    pxe: { mode: "nat", ipv4, tftp: { root: "/srv/tftp" }, bootp: { file: "pxelinux.0" } },
    "pxe-other-server": { mode: "nat", ipv4, bootp: { file: "boot/grub.efi", server: "10.50.1.2" } },
    "domain-forwarders-only": {
      mode: "nat",
      ipv4,
      dns: { forwarders: [{ address: "198.51.100.53", domain: "corp.test" }] },
    },
  };
  for (const [name, inputs] of Object.entries(cases)) {
    it(`renders ${name}`, () => {
      const s = spec(inputs);
      const text = renderDnsmasqConf(s, networkPaths(s.name));
      expectGolden(`dnsmasq/${name}.conf`, text);
      dnsmasqAccepts(text);
    });
  }

  it("advertises the IPv6 prefix for SLAAC, and no default route when isolated", () => {
    const s = spec({ mode: "route", ipv4, ipv6 });
    expectGolden("dnsmasq/ipv6-slaac.conf", renderDnsmasqConf(s, networkPaths(s.name)));
    const iso = spec({ mode: "isolated", ipv6 });
    expect(renderDnsmasqConf(iso, networkPaths(iso.name))).to.include("\nra-param=vn-lab,60,0\n");
  });

  it("serves stateful DHCPv6 for an IPv6 range beside an IPv4 range", () => {
    const s = spec({ mode: "route", ipv4, ipv6 });
    const r4 = buildRangeSpec({ start: "10.50.1.100", end: "10.50.1.199" }, "pool", {
      cidr: "10.50.1.0/24",
    }).spec!;
    const r6 = buildRangeSpec({ start: "fd00:50:1::100", end: "fd00:50:1::1ff", leaseTime: "2h" }, "pool6", {
      ipv6Cidr: "fd00:50:1::/64",
    }).spec!;
    const text = renderDnsmasqConf(s, networkPaths(s.name), [r4, r6]);
    expectGolden("dnsmasq/dual-stack-ranges.conf", text);
    dnsmasqAccepts(text);
  });

  it("serves static-only DHCP for a range of reservations alone", () => {
    const s = spec({ mode: "nat", ipv4 });
    const r = buildRangeSpec({ hosts: [{ mac: "52:54:00:aa:00:01", ip: "10.50.1.150" }] }, "fixed", {
      cidr: "10.50.1.0/24",
    }).spec!;
    const text = renderDnsmasqConf(s, networkPaths(s.name), [r]);
    expectGolden("dnsmasq/static-only.conf", text);
    dnsmasqAccepts(text);
  });

  it("serves DHCPv6 reservations as libvirt writes them: by DUID, by name, by both; static-only DHCPv6 too", () => {
    const s = spec({ mode: "route", ipv4, ipv6 });
    const net6 = { ipv6Cidr: "fd00:50:1::/64", ipv6Gateway: "fd00:50:1::1" };
    const r6 = buildRangeSpec(
      {
        start: "fd00:50:1::100",
        end: "fd00:50:1::1ff",
        hosts: [
          { duid: "00:03:00:01:52:54:00:aa:00:05", ip: "fd00:50:1::5" },
          { hostname: "printer", ip: "fd00:50:1::6" },
          { duid: "0:4:7e:7d", hostname: "vm7.example.com", ip: "fd00:50:1::7" },
        ],
      },
      "pool6",
      net6,
    ).spec!;
    const r4 = buildRangeSpec(
      { start: "10.50.1.100", end: "10.50.1.199", hosts: [{ mac: "52:54:00:aa:00:01", ip: "10.50.1.5" }] },
      "pool",
      { cidr: "10.50.1.0/24" },
    ).spec!;
    const hosts = renderDhcpHosts([r4, r6]);
    expectGolden("dnsmasq/dhcpv6-reservations.dhcp-hosts", hosts);
    const text = renderDnsmasqConf(s, networkPaths(s.name), [r4, r6]);
    expectGolden("dnsmasq/dhcpv6-reservations.conf", text);
    // The hosts file's lines are dhcp-host options without the name: dnsmasq checks them as such.
    dnsmasqAccepts(text + hosts.replace(/^/gm, "dhcp-host="));

    const fixed = buildRangeSpec(
      { hosts: [{ duid: "00:03:00:01:52:54:00:aa:00:05", ip: "fd00:50:1::5" }] },
      "fixed6",
      net6,
    ).spec!;
    const staticText = renderDnsmasqConf(s, networkPaths(s.name), [fixed]);
    expectGolden("dnsmasq/static-only-ipv6.conf", staticText);
    dnsmasqAccepts(staticText);
  });

  it("renders static records as a hosts file", () => {
    const s = spec({
      mode: "nat",
      ipv4,
      dns: {
        hosts: [
          { ip: "10.50.1.10", hostnames: ["db", "db.lab.test"] },
          { ip: "fd00::10", hostnames: ["v6"] },
        ],
      },
    });
    expectGolden("dnsmasq/hosts", renderHostsFile(s));
  });

  it("passes dnsmasq's own syntax check", () => {
    const s = spec({
      mode: "nat",
      ipv4,
      domain: { name: "lab.test", localOnly: true },
      dns: { forwarders: ["1.1.1.1"] },
    });
    dnsmasqAccepts(renderDnsmasqConf(s, networkPaths(s.name)));
  });

  it("turns DNS off with port=0", () => {
    const s = spec({ mode: "nat", ipv4, dns: { enabled: false } });
    expect(renderDnsmasqConf(s, networkPaths(s.name))).to.include("\nport=0\n");
  });
});

describe("bridge commands", () => {
  it("creates the bridge with STP off, no forward delay, a stable MAC and the ownership alias", () => {
    const s = spec({ mode: "nat", ipv4, bridge: { mtu: 9000 } });
    expectGolden("ip/bridge-create.batch", renderBridgeCreate(s).join("\n") + "\n");
  });

  it("derives a bridge name of at most 15 characters", () => {
    const s = spec({ mode: "nat", ipv4 }, "a-rather-long-network-name");
    expect(s.bridge.name.length).to.be.at.most(15);
    expect(s.bridge.name).to.not.equal(
      spec({ mode: "nat", ipv4 }, "a-rather-long-network-name-2").bridge.name,
    );
  });
});
