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

  it("says that reservations are IPv4-only, for an IPv6 address in an IPv4 range's hosts", () => {
    expect(
      errorsOf({
        start: "10.50.1.100",
        end: "10.50.1.199",
        hosts: [{ mac: "52:54:00:aa:00:01", ip: "fd00:50:1::5" }],
      }),
    ).to.deep.equal([
      'hosts[0].ip: "fd00:50:1::5" is an IPv6 address: reservations are supported on IPv4 ranges only',
    ]);
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
      'hosts[0]: MAC 52:54:00:00:00:01 is already reserved by DhcpRange "a" of this network; DhcpRange "b" cannot reserve it too (one reservation per MAC and per IP in a network)',
    ]);
    expect(reservationClashes(sameIp, [a])[0]).to.include(
      'IP 10.0.0.10 is already reserved by DhcpRange "a"',
    );
    expect(reservationClashes(distinct, [a])).to.deep.equal([]);
    expect(reservationClashes(a, [a]), "its own record is no clash").to.deep.equal([]);
  });
});
