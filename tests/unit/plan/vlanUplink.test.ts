// A network's VLAN-aware bridge and its VLAN on a trunk uplink: validation, `ip` lines (golden), plans from
// hand-made observations. (The kernel of these machines has neither; tests/e2e/vlan.test.ts runs them on
// host VMs that do.)
import { expect } from "chai";
import { buildNetworkSpec, NetworkInputs, NetworkSpec } from "../../../provider/model/network";
import { networkPaths, vlanLinkName } from "../../../provider/naming";
import { ObservedLink, ObservedNetwork } from "../../../provider/observe/observed";
import { appliedRecord, planApply, planDelete } from "../../../provider/plan/network";
import { renderBridgeCreate, renderVlanLinkCreate } from "../../../provider/render/ip";
import { renderNetworkRestore } from "../../../provider/render/restore";
import { expectGolden } from "../golden";
import { emptyObserved } from "../support/observed";

const spec = (inputs: NetworkInputs, name = "l2"): NetworkSpec => {
  const r = buildNetworkSpec(inputs, name);
  expect(r.errors).to.deep.equal([]);
  return r.spec!;
};
const errorsOf = (inputs: NetworkInputs) => buildNetworkSpec(inputs, "l2").errors;
const l2 = { mode: "open", bridge: { vlanFiltering: true }, vlan: { id: 10, uplink: "eth1" } } as const;
type Link = Omit<ObservedLink, "name" | "mtu" | "addresses">;
const links = (entries: [string, Link][]): ObservedLink[] =>
  entries.map(([name, l]) => ({ name, mtu: 1500, addresses: [], ...l }));
const eth1: [string, Link] = ["eth1", { kind: "veth", up: true }];
const names = (p: { actions: { name: string }[] }) => p.actions.map((a) => a.name);

describe("VLAN-aware networks and VLAN uplinks: validation", () => {
  it("normalizes vlanFiltering and the VLAN's sub-interface name", () => {
    const s = spec(l2);
    expect(s.bridge.vlanFiltering).to.equal(true);
    expect(s.vlan).to.deep.equal({ id: 10, uplink: "eth1", link: "eth1.10" });
    expect(spec({ mode: "open" }).bridge).to.not.have.property("vlanFiltering");
    const long = vlanLinkName("enx001122334455", 4094);
    expect(long.length).to.be.at.most(15);
    expect(long).to.match(/^vl[0-9a-f]{6}\.4094$/);
  });

  it("gives the bridge of a network on a VLAN uplink a MAC of its own on each host: they share one LAN", () => {
    const mac = (inputs: NetworkInputs, host: string) =>
      buildNetworkSpec(inputs, "l2", host).spec!.bridge.macAddress;
    expect(mac(l2, "198.18.0.11")).to.not.equal(mac(l2, "198.18.0.12"));
    expect(mac({ mode: "open" }, "198.18.0.11"), "as before without a VLAN").to.equal(
      spec({ mode: "open" }).bridge.macAddress,
    );
  });

  const cases: [string, NetworkInputs, string][] = [
    ["VLAN 0", { mode: "open", vlan: { id: 0, uplink: "eth1" } }, "vlan.id"],
    ["VLAN 4095", { mode: "open", vlan: { id: 4095, uplink: "eth1" } }, "vlan.id"],
    ["no uplink", { mode: "open", vlan: { id: 10 } as any }, "vlan.uplink"],
    [
      "an uplink that is no interface name",
      { mode: "open", vlan: { id: 10, uplink: "eth 1" } },
      "vlan.uplink",
    ],
    [
      "vlanFiltering not a boolean",
      { mode: "open", bridge: { vlanFiltering: "yes" as any } },
      "bridge.vlanFiltering",
    ],
  ];
  for (const [title, inputs, property] of cases)
    it(`rejects ${title} on ${property}`, () => {
      expect(errorsOf(inputs).map((e) => e.property)).to.include(property);
    });
});

describe("VLAN-aware networks and VLAN uplinks: host text (golden)", () => {
  it("makes a VLAN-aware bridge and the VLAN's sub-interface on it, also at boot", () => {
    const s = spec(l2);
    expectGolden("ip/bridge-vlan-filtering.batch", renderBridgeCreate(s).join("\n") + "\n");
    expectGolden(
      "ip/vlan-link.batch",
      renderVlanLinkCreate(s.name, s.bridge.name, s.vlan!).join("\n") + "\n",
    );
    expectGolden("restore/l2-vlan.sh", renderNetworkRestore(s, [], networkPaths(s.name)));
  });
});

describe("VLAN-aware networks and VLAN uplinks: plans", () => {
  const s = spec(l2);
  const applied = (over: Partial<ObservedNetwork>) =>
    emptyObserved({
      networks: [appliedRecord(s)],
      bridge: {
        kind: "bridge",
        alias: "virtnet:l2",
        mac: s.bridge.macAddress,
        mtu: 1500,
        up: true,
        stp: false,
        forwardDelay: 0,
        vlanFiltering: true,
        ports: [],
      },
      ...over,
    });

  it("a layer-2 switch (no address) routes nothing: no forwarding, no dnsmasq", () => {
    const plan = planApply(s, emptyObserved({ links: links([eth1]) }), networkPaths("l2"));
    expect(names(plan)).to.include("create VLAN link eth1.10 (VLAN 10 of eth1)");
    expect(names(plan).join()).to.not.match(/forwarding|dnsmasq/);
  });

  it("refuses an uplink the host does not have, and a sub-interface that is not the network's", () => {
    expect(planApply(s, emptyObserved({ links: links([]) }), networkPaths("l2")).errors).to.deep.equal([
      "vlan.uplink eth1 does not exist on the host",
    ]);
    const taken = (alias?: string) =>
      planApply(
        s,
        emptyObserved({ links: links([eth1, ["eth1.10", { kind: "vlan", alias, up: true }]]) }),
        networkPaths("l2"),
      ).errors;
    expect(taken(undefined)).to.deep.equal([
      "interface eth1.10 (VLAN 10 of eth1) already exists and is not virtnet's",
    ]);
    expect(taken("virtnet:other")).to.deep.equal([
      'interface eth1.10 (VLAN 10 of eth1) belongs to virtnet network "other"',
    ]);
  });

  it("repairs the sub-interface in place, replaces it when the VLAN changes, and removes it with the network", () => {
    const own = (over: Partial<Link>): [string, Link] => [
      "eth1.10",
      {
        kind: "vlan",
        alias: "virtnet:l2",
        master: "vn-l2",
        up: true,
        vlan: { id: 10, parent: "eth1" },
        ...over,
      },
    ];
    const repair = planApply(
      s,
      applied({ links: links([eth1, own({ master: undefined, up: false })]) }),
      networkPaths("l2"),
    );
    expect(names(repair).filter((n) => /VLAN/.test(n))).to.deep.equal([
      "put VLAN link eth1.10 on bridge vn-l2 (it is on none)",
      "bring VLAN link eth1.10 up",
    ]);
    expect(
      names(planApply(s, applied({ links: links([eth1, own({})]) }), networkPaths("l2"))).join(),
    ).to.not.match(/VLAN/);
    const to20 = spec({ ...l2, vlan: { id: 20, uplink: "eth1" } });
    const change = planApply(to20, applied({ links: links([eth1, own({})]) }), networkPaths("l2"));
    expect(names(change).filter((n) => /VLAN/.test(n))).to.deep.equal([
      "remove VLAN link eth1.10",
      "create VLAN link eth1.20 (VLAN 20 of eth1)",
    ]);
    expect(change.actions.find((a) => a.name === "remove VLAN link eth1.10")!.undo).to.include(
      "link add link eth1 name eth1.10 type vlan id 10",
    );
    const del = planDelete("l2", "vn-l2", applied({ links: links([eth1, own({})]) }), networkPaths("l2"));
    expect(names(del)).to.include("delete VLAN link eth1.10");
  });

  it("turns VLAN filtering on and off in place", () => {
    const plain = spec({ mode: "open" });
    const p = planApply(plain, applied({ links: links([]) }), networkPaths("l2"));
    const step = p.actions.find((a) => a.name === "turn VLAN filtering off")!;
    expect(step.run).to.equal("ip link set dev vn-l2 type bridge vlan_filtering 0");
    expect(step.undo).to.equal("ip link set dev vn-l2 type bridge vlan_filtering 1");
  });
});
