// DhcpRange validation: the messages a user sees for addresses of the wrong family.
import { expect } from "chai";
import { buildRangeSpec, reservationClashes } from "../../../provider/model/dhcpRange";

const dualStack = {
  cidr: "10.50.1.0/24",
  gateway: "10.50.1.1",
  ipv6Cidr: "fd00:50:1::/64",
  ipv6Gateway: "fd00:50:1::1",
};

function errorsOf(raw: Parameters<typeof buildRangeSpec>[0], net = dualStack) {
  return buildRangeSpec(raw, "pool", net).errors.map((e) => `${e.property}: ${e.reason}`);
}

describe("network/dhcp: ranges of each family", () => {
  it("builds an IPv4 range and an IPv6 range on a dual-stack network", () => {
    expect(buildRangeSpec({ start: "10.50.1.100", end: "10.50.1.199" }, "a", dualStack).spec).to.include({
      start: "10.50.1.100",
      end: "10.50.1.199",
      size: 100,
    });
    expect(
      buildRangeSpec({ start: "fd00:50:1::100", end: "fd00:50:1::1ff" }, "b", dualStack).spec,
    ).to.include({
      family: 6,
      size: 256,
    });
  });

  it("names the mixed family of a range's ends, whichever end is IPv6", () => {
    expect(errorsOf({ start: "10.50.1.100", end: "fd00:50:1::1ff" })).to.deep.equal([
      'end: "fd00:50:1::1ff" is an IPv6 address: start and end of a range are both IPv4 or both IPv6',
    ]);
    expect(errorsOf({ start: "fd00:50:1::100", end: "10.50.1.199" })).to.deep.equal([
      'end: "10.50.1.199" is an IPv4 address: start and end of a range are both IPv4 or both IPv6',
    ]);
  });

  it("sends an IPv6 address or a DUID in an IPv4 range's hosts to an IPv6 range", () => {
    expect(
      errorsOf({
        start: "10.50.1.100",
        end: "10.50.1.199",
        hosts: [{ mac: "52:54:00:aa:00:01", ip: "fd00:50:1::5" }],
      }),
    ).to.deep.equal([
      'hosts[0].ip: "fd00:50:1::5" is an IPv6 address: an IPv6 reservation goes on an IPv6 range (start and end IPv6, or hosts alone)',
    ]);
    expect(
      errorsOf({
        start: "10.50.1.100",
        end: "10.50.1.199",
        hosts: [{ mac: "52:54:00:aa:00:01", duid: "00:03:00:01", ip: "10.50.1.5" }],
      }),
    ).to.deep.equal(["hosts[0].duid: is for IPv6 ranges (DHCPv6): an IPv4 reservation is by mac"]);
  });

  it("takes a reservation's host name with a domain (as libvirt does), not one with a final dot or a space", () => {
    const hosts = [{ mac: "52:54:00:aa:00:01", ip: "10.50.1.150", hostname: "a.example.com" }];
    expect(
      buildRangeSpec({ start: "10.50.1.100", end: "10.50.1.199", hosts }, "p", dualStack).spec!.hosts,
    ).to.deep.equal(hosts);
    for (const hostname of ["a.example.com.", "a b", "-a"])
      expect(
        errorsOf({ start: "10.50.1.100", end: "10.50.1.199", hosts: [{ ...hosts[0], hostname }] }),
      ).to.deep.equal([
        `hosts[0].hostname: "${hostname}" is not a valid host name (DNS labels, no final dot)`,
      ]);
  });

  it("builds a static-only range from hosts alone, and asks for start without either", () => {
    const hosts = [{ mac: "52:54:00:aa:00:01", ip: "10.50.1.150" }];
    expect(buildRangeSpec({ hosts }, "s", dualStack).spec).to.deep.equal({
      name: "s",
      static: true,
      start: "10.50.1.0",
      end: "10.50.1.0",
      size: 0,
      leaseTime: "1h",
      hosts,
    });
    expect(errorsOf({})).to.deep.equal([
      "start: is required: a range needs start and end, or hosts alone (static-only DHCP)",
    ]);
    expect(errorsOf({ hosts: [{ mac: "52:54:00:aa:00:01", ip: "10.50.2.150" }] })).to.deep.equal([
      "hosts[0].ip: 10.50.2.150 is outside the network's subnet 10.50.1.0/24",
    ]);
  });

  it("never claims that IPv6 is unsupported", () => {
    const all = [
      ...errorsOf({ start: "10.50.1.100", end: "fd00:50:1::1ff" }),
      ...errorsOf({ start: "fd00:50:1::100", end: "fd00:50:1::1ff" }, {
        cidr: "10.50.1.0/24",
        gateway: "10.50.1.1",
      } as typeof dualStack),
    ].join("\n");
    expect(all).to.not.match(/not support/);
    expect(all).to.include("an IPv6 range needs an IPv6 subnet on the network (ipv6.cidr)");
  });
});

describe("network/dhcp: DHCPv6 reservations, by DUID, by host name, or by both", () => {
  const range6 = { start: "fd00:50:1::100", end: "fd00:50:1::1ff" };
  it("keeps each kind, with the DUID in one spelling (two hex digits a byte, lowercase)", () => {
    const hosts = [
      { duid: "0:3:0:1:52:54:0:AA:0:1", ip: "fd00:50:1::5" },
      { hostname: "printer", ip: "fd00:50:1::6" },
      { duid: "00:04:7e:7d", hostname: "vm7.example.com", ip: "fd00:50:1:0::7" },
    ];
    expect(buildRangeSpec({ ...range6, hosts }, "p", dualStack).spec!.hosts).to.deep.equal([
      { duid: "00:03:00:01:52:54:00:aa:00:01", ip: "fd00:50:1::5" },
      { hostname: "printer", ip: "fd00:50:1::6" },
      { duid: "00:04:7e:7d", hostname: "vm7.example.com", ip: "fd00:50:1::7" },
    ]);
  });

  it("builds static-only DHCPv6 from IPv6 reservations alone", () => {
    const hosts = [{ duid: "00:03:00:01:52:54:00:aa:00:01", ip: "fd00:50:1::5" }];
    expect(buildRangeSpec({ hosts }, "s6", dualStack).spec).to.deep.equal({
      name: "s6",
      family: 6,
      static: true,
      start: "fd00:50:1::",
      end: "fd00:50:1::",
      size: 0,
      leaseTime: "1h",
      hosts,
    });
    expect(
      errorsOf({ hosts }, { cidr: "10.50.1.0/24", gateway: "10.50.1.1" } as typeof dualStack),
    ).to.deep.equal(["hosts: an IPv6 reservation needs an IPv6 subnet on the network (ipv6.cidr)"]);
  });

  it("refuses a bad DUID, a MAC, neither DUID nor name, an address off the subnet, the gateway, an IPv4 address", () => {
    const bad: [object, string][] = [
      [{ duid: "00:03:zz", ip: "fd00:50:1::5" }, 'hosts[0].duid: "00:03:zz" is not a DUID'],
      [{ duid: "0003", ip: "fd00:50:1::5" }, 'hosts[0].duid: "0003" is not a DUID'],
      [{ duid: "00:03:", ip: "fd00:50:1::5" }, 'hosts[0].duid: "00:03:" is not a DUID'],
      [{ mac: "52:54:00:aa:00:01", ip: "fd00:50:1::5" }, "hosts[0].mac: DHCPv6 names a client by its DUID"],
      [{ ip: "fd00:50:1::5" }, "hosts[0]: an IPv6 reservation needs duid, hostname or both"],
      [
        { duid: "00:03", ip: "fd00:51::5" },
        "hosts[0].ip: fd00:51::5 is outside the network's subnet fd00:50:1::/64",
      ],
      [{ duid: "00:03", ip: "fd00:50:1::1" }, "hosts[0].ip: fd00:50:1::1 is the gateway"],
      [
        { duid: "00:03", ip: "10.50.1.5" },
        'hosts[0].ip: "10.50.1.5" is an IPv4 address: an IPv4 reservation goes on an IPv4 range',
      ],
    ];
    for (const [host, message] of bad) {
      const errors = errorsOf({ ...range6, hosts: [host as { ip: string }] });
      expect(errors, JSON.stringify(host)).to.have.length(1);
      expect(errors[0]).to.include(message);
    }
  });

  it("refuses a DUID, an address or a name-only host name reserved twice in a range", () => {
    expect(
      errorsOf({
        ...range6,
        hosts: [
          { duid: "0:3", ip: "fd00:50:1::5" },
          { duid: "00:03", ip: "fd00:50:1::6" },
          { hostname: "a", ip: "fd00:50:1::6" },
          { hostname: "A", ip: "fd00:50:1::8" },
        ],
      }),
    ).to.deep.equal([
      "hosts[1].duid: 00:03 is reserved twice",
      "hosts[2].ip: fd00:50:1::6 is reserved twice",
      "hosts[3].hostname: A is reserved twice",
    ]);
  });
});

describe("reservationClashes: one reservation per MAC and per IP in a network", () => {
  const range = (name: string, hosts: { mac: string; ip: string }[]) => ({
    name,
    start: "10.0.0.100",
    end: "10.0.0.150",
    size: 51,
    leaseTime: "1h",
    hosts,
  });
  it("names both ranges for a MAC or an IP another range reserves, and nothing for distinct ones", () => {
    const a = range("a", [{ mac: "52:54:00:00:00:01", ip: "10.0.0.10" }]);
    const sameMac = range("b", [{ mac: "52:54:00:00:00:01", ip: "10.0.0.11" }]);
    const sameIp = range("b", [{ mac: "52:54:00:00:00:02", ip: "10.0.0.10" }]);
    const distinct = range("b", [{ mac: "52:54:00:00:00:03", ip: "10.0.0.12" }]);
    expect(reservationClashes(sameMac, [a])).to.deep.equal([
      'hosts[0]: MAC 52:54:00:00:00:01 is already reserved by DhcpRange "a" of this network; DhcpRange "b" cannot reserve it too (one reservation per MAC, per DUID and per IP in a network)',
    ]);
    expect(reservationClashes(sameIp, [a])[0]).to.include(
      'IP 10.0.0.10 is already reserved by DhcpRange "a"',
    );
    expect(reservationClashes(distinct, [a])).to.deep.equal([]);
    expect(reservationClashes(a, [a]), "its own record is no clash").to.deep.equal([]);
  });

  it("names a DUID another range reserves; IPv6 reservations without a MAC never clash by MAC", () => {
    const v6 = (name: string, hosts: { duid?: string; hostname?: string; ip: string }[]) => ({
      name,
      family: 6 as const,
      start: "fd00::100",
      end: "fd00::1ff",
      size: 256,
      leaseTime: "1h",
      hosts,
    });
    const a = v6("a", [{ duid: "00:03:00:01", ip: "fd00::5" }]);
    expect(reservationClashes(v6("b", [{ duid: "00:03:00:01", ip: "fd00::6" }]), [a])[0]).to.include(
      'hosts[0]: DUID 00:03:00:01 is already reserved by DhcpRange "a"',
    );
    expect(reservationClashes(v6("b", [{ hostname: "x", ip: "fd00::7" }]), [a])).to.deep.equal([]);
    expect(reservationClashes(v6("b", [{ hostname: "x", ip: "fd00::5" }]), [a])[0]).to.include("IP fd00::5");
  });
});
