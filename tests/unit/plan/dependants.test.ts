import { expect } from "chai";
import { emptyObserved } from "../support/observed";
import { buildNetworkSpec, NetworkSpec } from "../../../provider/model/network";
import { buildRangeSpec } from "../../../provider/model/dhcpRange";
import { buildRouteSpec } from "../../../provider/model/staticRoute";
import { buildPortSpec } from "../../../provider/model/port";
import { bridgeAlias, networkPaths, STATE_DIR } from "../../../provider/naming";
import { ObservedNetwork } from "../../../provider/observe/observed";
import { appliedRecord, planApply, planDelete } from "../../../provider/plan/network";
import { planRoute } from "../../../provider/plan/route";
import { planPort } from "../../../provider/plan/port";
import { dependantsOf, sameStack } from "../../../provider/plan/dependants";

const spec: NetworkSpec = buildNetworkSpec({ mode: "isolated", ipv4: { cidr: "10.50.1.0/24" } }, "lab").spec!;
const paths = networkPaths("lab");
const A = "proj/a";
const B = "proj/b";

const range = (name: string, start: string, stack?: string) => ({
  ...buildRangeSpec({ start, end: start.replace(/\d+$/, (n) => String(Number(n) + 9)) }, name, {
    cidr: "10.50.1.0/24",
  }).spec!,
  ...(stack ? { stack } : {}),
});
const route = (name: string, device: string, stack?: string) => ({
  ...buildRouteSpec({ destination: "10.60.0.0/16", gateway: "10.50.1.254" }, name).spec!,
  device,
  ...(stack ? { stack } : {}),
});
const port = (name: string, stack?: string) => ({
  ...buildPortSpec({ name }, name, { name: "lab", bridgeName: spec.bridge.name }, "h1").spec!,
  ...(stack ? { stack } : {}),
});

/** The network's host with the network (recorded by `owner`) and the given dependants. */
function host(owner: string | undefined, over: Partial<ObservedNetwork> = {}): ObservedNetwork {
  return emptyObserved({
    bridge: {
      kind: "bridge",
      alias: bridgeAlias("lab"),
      mac: spec.bridge.macAddress,
      mtu: 1500,
      up: true,
      stp: false,
      forwardDelay: 0,
      ports: [],
    },
    networks: [appliedRecord(spec, "nftables", owner)],
    dirs: [STATE_DIR, paths.stateDir],
    ...over,
  });
}

const segment = (stack?: string) => ({
  vni: 10,
  port: 4789,
  mtu: 1450,
  local: "198.18.0.11",
  members: [
    { extension: "far", host: "root@198.18.0.12:22", address: "198.18.0.12", ...(stack ? { stack } : {}) },
  ],
});

describe("a network's delete while other stacks' dependants remain", () => {
  it("is refused before any change, naming each dependant of another stack, its kind and its stack, and what to do", () => {
    const o = host(A, {
      ranges: [range("pool-b", "10.50.1.100", B), range("pool-a", "10.50.1.200", A)],
      route: { kernel: [], records: [route("to-b", spec.bridge.name, B)], dirs: [] },
      ports: [port("tap-b", B)],
      segment: segment("org/proj/c"),
    });
    const p = planDelete("lab", spec.bridge.name, o, paths, A);
    expect(p.actions).to.deep.equal([]);
    expect(p.errors).to.have.length(1);
    const e = p.errors[0];
    for (const named of [
      'DhcpRange "pool-b" of stack "proj/b"',
      'StaticRoute "to-b" of stack "proj/b"',
      'Port "tap-b" of stack "proj/b"',
      'NetworkExtension "far" of stack "org/proj/c"',
      "destroy them in their stack (or move them to another network) first",
    ])
      expect(e).to.include(named);
    expect(e).to.not.include("pool-a");
    expect(e).to.match(/^network "lab" is still used by another stack: /);
  });

  it("deletes the network as before when every dependant is the deleting stack's own (a replacement within one stack)", () => {
    const o = host(A, {
      ranges: [range("pool", "10.50.1.100", A)],
      route: { kernel: [], records: [route("r", spec.bridge.name, A)], dirs: [] },
      ports: [port("tap0", A)],
      segment: segment(A),
    });
    const p = planDelete("lab", spec.bridge.name, o, paths, A);
    expect(p.errors).to.deep.equal([]);
    expect(p.actions.length).to.be.greaterThan(0);
    expect(p.actions.map((a) => a.name)).to.include.members([
      "delete bridge",
      "remove files",
      "bridge deleted",
    ]);
  });

  it("treats records written before stacks were recorded as the deleting stack's (no refusal after an upgrade)", () => {
    const o = host(undefined, { ranges: [range("old", "10.50.1.100")], ports: [port("tap-old")] });
    expect(planDelete("lab", spec.bridge.name, o, paths, A).errors).to.deep.equal([]);
  });

  it("refuses nothing when the deleting network's own stack is unknown (state and record from before)", () => {
    const o = host(undefined, { ranges: [range("pool-b", "10.50.1.100", B)] });
    expect(planDelete("lab", spec.bridge.name, o, paths).errors).to.deep.equal([]);
  });

  it("takes the deleting stack from the network's record when its state has none", () => {
    const o = host(A, { ranges: [range("pool-b", "10.50.1.100", B)] });
    expect(planDelete("lab", spec.bridge.name, o, paths).errors[0]).to.include('DhcpRange "pool-b"');
  });

  it("counts only routes via the network's bridge", () => {
    const o = host(A, { route: { kernel: [], records: [route("elsewhere", "vn-other", B)], dirs: [] } });
    expect(dependantsOf(spec.bridge.name, o)).to.deep.equal([]);
    expect(planDelete("lab", spec.bridge.name, o, paths, A).errors).to.deep.equal([]);
  });

  it("compares organizations only when both stacks name one", () => {
    expect(sameStack("proj/a", "org/proj/a")).to.equal(true);
    expect(sameStack("org/proj/a", "org/proj/a")).to.equal(true);
    expect(sameStack("org/proj/a", "other/proj/a")).to.equal(false);
    expect(sameStack("proj/a", "proj/b")).to.equal(false);
    expect(sameStack("p1/a", "p2/a")).to.equal(false);
    const o = host("org/proj/a", { ranges: [range("mine", "10.50.1.100", "proj/a")] });
    expect(planDelete("lab", spec.bridge.name, o, paths, "org/proj/a").errors).to.deep.equal([]);
  });
});

describe("the stack in the host records", () => {
  const written = (p: { actions: { name: string; run: string }[] }, path: string) =>
    p.actions.find((a) => a.name.includes(path))?.run ?? "";

  it("a network's record names the stack that applied it, and keeps it when a dependant's change re-applies it", () => {
    const applied = planApply(spec, emptyObserved(), paths, { stack: A });
    expect(written(applied, paths.appliedSpec)).to.include('"stack":"proj/a"');
    // A range's change plans the network again without a stack: the record stays as it is.
    const o = emptyObserved({ networks: [appliedRecord(spec, "nftables", A)] });
    expect(planApply(spec, o, paths).actions.map((a) => a.name)).to.not.include(`write ${paths.appliedSpec}`);
    expect(written(planApply(spec, o, paths), paths.appliedSpec)).to.equal("");
  });

  it("a route's and a Port's records name their stack, kept when a change gives none", () => {
    const r = route("r", spec.bridge.name);
    const withStack = planRoute(r, { kernel: [], records: [], dirs: [] }, B);
    expect(withStack.actions.map((a) => a.run).join("\n")).to.include('"stack":"proj/b"');
    const kept = planRoute(r, { kernel: [], records: [{ ...r, stack: B }], dirs: [] });
    expect(kept.actions.map((a) => a.run).join("\n")).to.not.include("routes/r.json");
    const p = port("tap0");
    const o = host(A, { ports: [] });
    expect(
      planPort(p, o, B)
        .actions.map((a) => a.run)
        .join("\n"),
    ).to.include('"stack":"proj/b"');
  });
});
