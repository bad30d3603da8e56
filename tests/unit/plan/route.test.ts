import { expect } from "chai";
import { buildRouteSpec } from "../../../provider/model/staticRoute";
import { planRoute, planRouteDelete } from "../../../provider/plan/route";
import { RouteObservation } from "../../../provider/observe/observed";
import { ROUTE_PROTO } from "../../../provider/naming";
import { UNKNOWN } from "../../../provider/model/validation";

const empty = (): RouteObservation => ({
  kernel: [],
  records: [],
  dirs: ["/var/lib/virtnet", "/var/lib/virtnet/routes"],
});

describe("static route validation", () => {
  it("normalizes IPv4 and IPv6 routes", () => {
    expect(
      buildRouteSpec({ destination: "10.60.0.0/16", gateway: "10.50.1.254", metric: 100 }, "r").spec,
    ).to.deep.equal({
      name: "r",
      family: 4,
      destination: "10.60.0.0/16",
      gateway: "10.50.1.254",
      metric: 100,
    });
    expect(buildRouteSpec({ destination: "fd00:60::/48", gateway: "fd00:50::fe" }, "r6").spec).to.include({
      family: 6,
      destination: "fd00:60::/48",
      metric: 1024, // the kernel's for an IPv6 route given none (or 0): what it lists back
    });
    expect(
      buildRouteSpec({ destination: "fd00:60::/48", gateway: "fd00:50::fe", metric: 0 }, "r6").spec!.metric,
    ).to.equal(1024);
    expect(
      buildRouteSpec({ destination: "fd00:60::/48", gateway: "fd00:50::fe", metric: 7 }, "r6").spec!.metric,
    ).to.equal(7);
  });

  const cases: [string, object, string][] = [
    ["host bits", { destination: "10.60.1.0/16", gateway: "10.50.1.254" }, "destination"],
    ["not a CIDR", { destination: "10.60.0.0", gateway: "10.50.1.254" }, "destination"],
    ["family mix", { destination: "10.60.0.0/16", gateway: "fd00::1" }, "gateway"],
    ["bad gateway", { destination: "10.60.0.0/16", gateway: "10.50.1.256" }, "gateway"],
    ["metric", { destination: "10.60.0.0/16", gateway: "10.50.1.254", metric: 1.5 }, "metric"],
    ["name", { name: "a/b", destination: "10.60.0.0/16", gateway: "10.50.1.254" }, "name"],
    [
      "gateway outside the network",
      {
        destination: "10.60.0.0/16",
        gateway: "10.51.0.1",
        network: { bridgeName: "vn-x", cidr: "10.50.1.0/24" },
      },
      "gateway",
    ],
    [
      "gateway is the network's own address",
      {
        destination: "10.60.0.0/16",
        gateway: "10.50.1.1",
        network: { cidr: "10.50.1.0/24", gatewayIp: "10.50.1.1" },
      },
      "gateway",
    ],
  ];
  for (const [title, inputs, property] of cases)
    it(`rejects ${title} on ${property}`, () => {
      expect(buildRouteSpec(inputs, "r").errors.map((e) => e.property)).to.include(property);
    });

  it("checks an IPv6 gateway against the network's IPv6 subnet, beside its IPv4 one", () => {
    const network = {
      bridgeName: "vn-x",
      cidr: "10.50.1.0/24",
      gatewayIp: "10.50.1.1",
      ipv6Cidr: "fd00:50:1::/64",
      ipv6Gateway: "fd00:50:1::1",
    };
    const reasons = (gateway: string, net: object = network) =>
      buildRouteSpec({ destination: "fd00:60::/48", gateway, network: net }, "r6").errors.map(
        (e) => e.reason,
      );
    expect(
      buildRouteSpec({ destination: "fd00:60::/48", gateway: "fd00:50:1::fe", network }, "r6").spec,
    ).to.deep.equal({
      name: "r6",
      family: 6,
      destination: "fd00:60::/48",
      gateway: "fd00:50:1::fe",
      metric: 1024,
      device: "vn-x",
    });
    expect(reasons("fd00:51::fe")).to.deep.equal([
      "fd00:51::fe is not inside the network's subnet fd00:50:1::/64",
    ]);
    expect(reasons("fd00:50:1::1")).to.deep.equal([
      "fd00:50:1::1 is the network's own address: use a router on that network",
    ]);
    expect(reasons("fd00:50:1::fe", { bridgeName: "vn-x", cidr: "10.50.1.0/24" })).to.deep.equal([
      "fd00:50:1::fe is an IPv6 address and the network has no subnet of that family",
    ]);
    // The libvirt import names a route's subnet `cidr`, whatever its family.
    expect(reasons("fd00:50:1::fe", { cidr: "fd00:50:1::/64", gatewayIp: "fd00:50:1::1" })).to.deep.equal([]);
  });

  it("tolerates preview unknowns", () => {
    expect(buildRouteSpec({ destination: UNKNOWN, gateway: "10.0.0.1" }, "r")).to.deep.equal({ errors: [] });
  });
});

describe("static route planner", () => {
  const spec = buildRouteSpec({ destination: "10.60.0.0/16", gateway: "10.50.1.254", metric: 5 }, "r").spec!;

  it("adds the route with virtnet's protocol and records it", () => {
    const plan = planRoute(spec, { ...empty(), gatewayLookup: { dev: "vn-lab" } });
    expect(plan.actions.map((a) => a.name)).to.deep.equal([
      "add route 10.60.0.0/16",
      "write /var/lib/virtnet/routes/r.json",
      "write /var/lib/virtnet/routes/r.restore",
    ]);
    expect(plan.actions[0].run).to.equal(
      `ip -4 route replace 10.60.0.0/16 via 10.50.1.254 metric 5 proto ${ROUTE_PROTO}`,
    );
  });

  it("refuses a route with the same key that is not virtnet's", () => {
    const o = {
      ...empty(),
      kernel: [{ dst: "10.60.0.0/16", gateway: "10.9.9.9", metric: 5, protocol: "static" }],
    };
    expect(planRoute(spec, o).errors.join()).to.match(/already exists and is not virtnet's/);
  });

  it("is in sync when the kernel has it", () => {
    const o = {
      ...empty(),
      kernel: [{ dst: "10.60.0.0/16", gateway: "10.50.1.254", metric: 5, protocol: String(ROUTE_PROTO) }],
      records: [spec],
    };
    expect(planRoute(spec, o).actions).to.deep.equal([]);
  });

  it("moves a route whose metric changed: the old kernel route goes", () => {
    const old = { ...spec, metric: 1 };
    const o = {
      ...empty(),
      kernel: [{ dst: "10.60.0.0/16", gateway: "10.50.1.254", metric: 1, protocol: 242 }],
      records: [old],
    };
    expect(planRoute(spec, o).actions.map((a) => a.name)).to.deep.equal([
      "remove route 10.60.0.0/16",
      "add route 10.60.0.0/16",
      "write /var/lib/virtnet/routes/r.json",
      "write /var/lib/virtnet/routes/r.restore",
    ]);
  });

  it("deletes only a route it recorded", () => {
    expect(planRouteDelete("r", empty(), false).actions).to.deep.equal([]);
  });
});
