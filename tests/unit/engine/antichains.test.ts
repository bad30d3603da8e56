// The destroy order of the test engine: Pulumi's antichains (independent deletes run together).
import { expect } from "chai";
import { deleteAntichains, ResourceState } from "../../engine/engine";

const res = (name: string, extra: Partial<ResourceState> = {}): ResourceState => ({
  urn: `urn:pulumi:s::p::virtnet:T::${name}`,
  type: "virtnet:T",
  custom: true,
  inputs: {},
  outputs: {},
  ...extra,
});
const urn = (name: string) => res(name).urn;
const names = (chains: ResourceState[][]) => chains.map((c) => c.map((r) => r.urn.split("::").pop()));

describe("engine: destroy antichains", () => {
  it("deletes what nothing depends on first, all of it together, newest first; then what those held", () => {
    const state = [
      res("net1"),
      res("net2"),
      res("range1", { dependencies: [urn("net1")] }),
      res("range2", { dependencies: [urn("net2")] }),
      res("route", { dependencies: [urn("net1")] }),
    ];
    expect(names(deleteAntichains(state))).to.deep.equal([
      ["route", "range2", "range1"],
      ["net2", "net1"],
    ]);
  });

  it("a parent and a provider hold their children until the children are gone", () => {
    const state = [
      res("prov", { type: "pulumi:providers:x" }),
      res("comp", { custom: false }),
      res("child", { parent: urn("comp"), provider: `${urn("prov")}::id-1` }),
    ];
    expect(names(deleteAntichains(state))).to.deep.equal([["child"], ["comp", "prov"]]);
  });

  it("a cycle (never recorded by the engine) falls back to one at a time", () => {
    const state = [res("a", { dependencies: [urn("b")] }), res("b", { dependencies: [urn("a")] })];
    expect(names(deleteAntichains(state))).to.deep.equal([["b"], ["a"]]);
  });
});
