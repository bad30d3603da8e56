// virtnet's one nft table ("inet virtnet") on a private network namespace: networks' chains side by side, a
// network's own table from an earlier virtnet replaced in one transaction, and rollbacks that put back
// exactly what was there.
import { expect } from "chai";
import { legacyNftTableName, nftChainId } from "../../../provider/naming";
import { ownFirewallActions, removeOwnFirewallActions } from "../../../provider/plan/firewall";
import { buildNetworkSpec, NetworkInputs, NetworkSpec } from "../../../provider/model/network";
import { renderNftables } from "../../../provider/render/nftables";
import { PrivateHost } from "../support/privateHost";

function spec(inputs: NetworkInputs, name: string): NetworkSpec {
  const r = buildNetworkSpec(inputs, name);
  expect(r.errors).to.deep.equal([]);
  return r.spec!;
}

/** What an earlier virtnet applied: the same rules in a table of the network's own, chains named by kind. */
function legacyRuleset(s: NetworkSpec): string {
  const id = nftChainId(s.name);
  return renderNftables(s)!
    .replace(/^table inet virtnet \{/, `table inet ${legacyNftTableName(s.name)} {`)
    .replaceAll(`chain ${id}.`, "chain ");
}

describe("the shared nft table on a private network namespace", function () {
  this.timeout(30_000);
  let host: PrivateHost;
  beforeEach(async () => {
    host = await PrivateHost.start();
  });
  afterEach(() => host.close());

  const a = spec({ mode: "nat", ipv4: { cidr: "10.50.1.0/24" } }, "lab");
  const b = spec({ mode: "isolated", ipv4: { cidr: "10.50.2.0/24" } }, "lab.two");

  const apply = (s: NetworkSpec, failAfter = "") => {
    const actions = ownFirewallActions(s, host.observe(s), "nftables");
    return { names: actions.map((x) => x.name), r: host.apply(s, actions, failAfter) };
  };

  it("holds several networks' chains; each reads back as rendered, and removing one leaves the other", () => {
    expect(apply(a).names).to.deep.equal(["create nft table inet virtnet", "apply firewall"]);
    expect(apply(b).names, "the table exists now").to.deep.equal(["apply firewall"]);
    expect(host.observe(a).nftListing).to.equal(renderNftables(a));
    expect(host.observe(b).nftListing).to.equal(renderNftables(b));
    expect(ownFirewallActions(a, host.observe(a), "nftables"), "in sync").to.deep.equal([]);
    const r = host.apply(a, removeOwnFirewallActions(a.name, host.observe(a)));
    expect(r.status, r.stderr).to.equal(0);
    expect(host.observe(a).nftListing).to.equal(undefined);
    expect(host.observe(b).nftListing).to.equal(renderNftables(b));
    expect(host.must("nft list table inet virtnet")).to.equal(renderNftables(b));
  });

  it("adds a new network's chains as they are; clears an existing network's first, so no rule is doubled", () => {
    const firewallStep = (s: NetworkSpec) =>
      ownFirewallActions(s, host.observe(s), "nftables").find((x) => x.name === "apply firewall")!;
    expect(firewallStep(a).run, "nothing to clear on a new network").to.not.include("delete chain");
    expect(apply(a).r.status).to.equal(0);
    const changed = spec({ mode: "route", ipv4: { cidr: "10.50.1.0/24" } }, "lab");
    expect(firewallStep(changed).run).to.include(`delete chain inet virtnet ${nftChainId(a.name)}.forward`);
    expect(apply(changed).r.status).to.equal(0);
    expect(host.observe(changed).nftListing).to.equal(renderNftables(changed));
  });

  it("a failed first apply leaves no table behind", () => {
    const before = host.firewallState();
    const { r } = apply(a, "apply firewall");
    expect(r.status).to.not.equal(0);
    expect(host.firewallState()).to.equal(before);
  });

  it("an update whose later step fails puts the network's previous chains back exactly", () => {
    expect(apply(a).r.status).to.equal(0);
    expect(apply(b).r.status).to.equal(0);
    const changed = spec({ mode: "route", ipv4: { cidr: "10.50.1.0/24" } }, "lab");
    const actions = ownFirewallActions(changed, host.observe(changed), "nftables");
    expect(host.apply(changed, actions, "apply firewall").status).to.not.equal(0);
    // Back in full; now listed after the other network's chains (their order in the table is creation
    // order, and no verdict depends on it: every network's chain sees every packet, and any reject is final).
    expect(host.observe(a).nftListing).to.equal(renderNftables(a));
    expect(host.observe(b).nftListing).to.equal(renderNftables(b));
    expect(host.must("nft list tables")).to.equal("table inet virtnet\n");
  });

  it("replaces a network's table from an earlier virtnet in the same transaction, and a rollback restores it", () => {
    const legacy = legacyNftTableName(a.name);
    host.must(`printf '%s' '${legacyRuleset(a)}' | nft -f -`);
    const before = host.firewallState();
    const seen = host.observe(a);
    expect(seen.legacyNftTable?.name).to.equal(legacy);
    expect(seen.forwardChainsWithDrop).to.deep.equal([]);
    // Rolled back after the transaction: the old table is back, byte for byte, and no shared table is left.
    expect(apply(a, "apply firewall").r.status).to.not.equal(0);
    expect(host.firewallState()).to.equal(before);
    // Applied: the old table is gone, the chains are in the shared table, and nothing is left to do.
    const { names, r } = apply(a);
    expect(r.status, r.stderr).to.equal(0);
    expect(names).to.deep.equal(["create nft table inet virtnet", "apply firewall"]);
    expect(host.must("nft list tables")).to.not.include(legacy);
    expect(host.observe(a).nftListing).to.equal(renderNftables(a));
    expect(ownFirewallActions(a, host.observe(a), "nftables")).to.deep.equal([]);
  });

  it("deleting a network that only has a table from an earlier virtnet removes that table and makes none", () => {
    const before = host.firewallState();
    host.must(`printf '%s' '${legacyRuleset(a)}' | nft -f -`);
    const r = host.apply(a, removeOwnFirewallActions(a.name, host.observe(a)));
    expect(r.status, r.stderr).to.equal(0);
    expect(host.firewallState()).to.equal(before);
  });
});
