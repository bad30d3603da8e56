// The iptables driver: golden renders, iptables-restore's own check, and real apply/re-apply/delete cycles
// in a private network namespace (the kernel lists our chains back exactly as rendered; delete leaves the
// namespace exactly as it was, including the tables and built-in chains iptables-nft made for us).
import { DOCKER_SETUP } from "../../support/docker";
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { iptablesChainPrefix, nftChainId } from "../../../provider/naming";
import { ownFirewallActions, removeOwnFirewallActions } from "../../../provider/plan/firewall";
import { planForeignFirewalls, removeForeignFirewallActions } from "../../../provider/plan/foreignFirewalls";
import { appliedRecord } from "../../../provider/plan/network";
import { buildNetworkSpec, NetworkInputs, NetworkSpec } from "../../../provider/model/network";
import { IpFamily } from "../../../provider/render/firewallIntent";
import {
  iptablesSaveText,
  ownedState,
  parseIptablesSave,
  renderIptablesState,
  ruleWords,
  saveWord,
} from "../../../provider/render/iptables";
import { renderNftables } from "../../../provider/render/nftables";
import { expectGolden } from "../golden";
import { firewallCases } from "../support/firewallCases";
import { PrivateHost } from "../support/privateHost";

function spec(inputs: NetworkInputs, name = "lab"): NetworkSpec {
  const r = buildNetworkSpec(inputs, name);
  expect(r.errors).to.deep.equal([]);
  return r.spec!;
}

const FAMILY_FILE: Record<IpFamily, string> = { ipv4: "rules", ipv6: "ip6.rules" };

// iptables-restore --test parses and checks a ruleset against the kernel without committing it; in a fresh
// network namespace it touches nothing the machine has.
function restoreAccepts(family: IpFamily, text: string): void {
  const cmd = family === "ipv4" ? "iptables-restore" : "ip6tables-restore";
  const r = spawnSync("unshare", ["--net", cmd, "--test"], { input: text, encoding: "utf8" });
  expect(r.status, `${cmd} --test: ${r.stderr}`).to.equal(0);
}

describe("iptables renderer (golden)", () => {
  for (const [name, inputs] of Object.entries(firewallCases)) {
    it(`renders ${name} for iptables and ip6tables, and iptables-restore --test accepts both`, () => {
      const state = renderIptablesState(spec(inputs));
      for (const family of ["ipv4", "ipv6"] as const) {
        const text = iptablesSaveText(state[family]);
        expectGolden(`iptables/${name}.${FAMILY_FILE[family]}`, text);
        restoreAccepts(family, text);
      }
    });
  }

  it("renders nothing for mode open", () => {
    const state = renderIptablesState(spec({ mode: "open", ipv4: { cidr: "10.50.1.0/24" } }));
    expect(iptablesSaveText(state.ipv4) + iptablesSaveText(state.ipv6)).to.equal("");
  });

  it("names chains VN-<hash>-IN/-OUT/-FWD/-NAT within iptables' 28 characters, apart for similar names", () => {
    const long = "a-rather-long-network-name-that-is-just-under-the-limit-of-64-ch";
    const s = renderIptablesState(spec({ mode: "nat", ipv4: { cidr: "10.50.1.0/24" } }, long));
    const chains = [...Object.keys(s.ipv4.filter.chains), ...Object.keys(s.ipv4.nat.chains)];
    expect(chains.map((c) => c.replace(/^VN-[0-9a-f]{8}-/, "")).sort()).to.deep.equal([
      "FWD",
      "IN",
      "NAT",
      "OUT",
    ]);
    for (const c of chains) expect(c.length).to.be.at.most(28);
    expect(iptablesChainPrefix("my.net")).to.not.equal(iptablesChainPrefix("my_net"));
  });

  it("quotes words exactly like iptables-save and splits them back", () => {
    expect(saveWord("virtnet")).to.equal("virtnet");
    expect(saveWord("virtnet: network a.b")).to.equal('"virtnet: network a.b"');
    const line = '-A INPUT -m comment --comment "virtnet: network lab" -j VN-1-IN';
    expect(ruleWords(line)).to.deep.equal([
      "-A",
      "INPUT",
      "-m",
      "comment",
      "--comment",
      "virtnet: network lab",
      "-j",
      "VN-1-IN",
    ]);
  });
});

describe("iptables backend on a private network namespace", function () {
  this.timeout(30_000);
  let host: PrivateHost;
  beforeEach(async () => {
    host = await PrivateHost.start();
  });
  afterEach(() => host.close());

  const applyOwn = (s: NetworkSpec, backend: "iptables" | "nftables" = "iptables") => {
    const actions = ownFirewallActions(s, host.observe(s), backend);
    const r = host.apply(s, actions);
    expect(r.status, r.stderr).to.equal(0);
    return actions.map((a) => a.name);
  };
  const removeOwn = (s: NetworkSpec) => {
    const r = host.apply(s, removeOwnFirewallActions(s.name, host.observe(s)));
    expect(r.status, r.stderr).to.equal(0);
    // The shared table stays for other networks; the last network's delete removes it (planDelete).
    host.sh("nft delete table inet virtnet");
  };

  for (const [name, inputs] of Object.entries(firewallCases)) {
    it(`${name}: applies, reads back exactly as rendered (no drift), and deletes without a trace`, () => {
      const s = spec(inputs);
      const before = host.firewallState();
      applyOwn(s);
      const observed = host.observe(s);
      for (const family of ["ipv4", "ipv6"] as const)
        expect(
          iptablesSaveText(ownedState(observed.firewall!.iptables[family], iptablesChainPrefix(s.name))),
        ).to.equal(iptablesSaveText(renderIptablesState(s)[family]));
      expect(ownFirewallActions(s, observed, "iptables")).to.deep.equal([]);
      removeOwn(s);
      expect(host.firewallState()).to.equal(before);
      // Only the generation token stays: it goes with the state directory, in the last network's delete.
      expect(host.must("ls -A /var/lib/virtnet")).to.equal("generation\n");
    });
  }

  it("re-applies a changed network by rewriting its chains, never adding a second jump", () => {
    const nat = spec({ mode: "nat", ipv4: { cidr: "10.50.1.0/24" } });
    const route = spec({ mode: "route", ipv4: { cidr: "10.50.1.0/24" } });
    applyOwn(nat);
    const names = applyOwn(route);
    expect(names).to.include("apply firewall: iptables filter");
    expect(names).to.include("remove firewall: iptables nat");
    const save = host.must("iptables-save");
    expect(save.match(/-j VN-[0-9a-f]+-FWD/g)).to.have.length(1);
    expect(save).to.include('"routed in"');
    expect(save).to.not.include('"replies in"');
    expect(ownFirewallActions(route, host.observe(route), "iptables")).to.deep.equal([]);
  });

  it("keeps built-in chains another network still jumps from, and removes them with the last network", () => {
    const before = host.firewallState();
    const a = spec({ mode: "nat", ipv4: { cidr: "10.50.1.0/24" } }, "a");
    const b = spec({ mode: "route", ipv4: { cidr: "10.50.2.0/24" } }, "b");
    applyOwn(a);
    applyOwn(b);
    expect(host.must("cat /var/lib/virtnet/iptables-scaffold")).to.include("ip filter INPUT");
    removeOwn(a);
    expect(host.must("iptables -S INPUT")).to.match(/-j VN-[0-9a-f]+-IN/);
    expect(host.must("iptables-save")).to.not.include(iptablesChainPrefix("a"));
    removeOwn(b);
    expect(host.firewallState()).to.equal(before);
  });

  it("leaves built-in chains that were there before, and rules of others in them", () => {
    host.must("iptables -A INPUT -p tcp --dport 22 -j ACCEPT && ip6tables -P FORWARD DROP");
    const before = host.firewallState();
    const s = spec({ mode: "nat", ipv4: { cidr: "10.50.1.0/24" } });
    applyOwn(s);
    removeOwn(s);
    expect(host.firewallState()).to.equal(before);
  });

  it("rolls back completely when the apply fails after any of its actions", () => {
    const s = spec({
      mode: "nat",
      ipv4: { cidr: "10.50.1.0/24" },
      ipv6: { cidr: "fd00:50:1::/64" },
      nat: { ipv6: true },
    });
    const before = host.firewallState();
    const actions = ownFirewallActions(s, host.observe(s), "iptables");
    expect(actions.length).to.equal(5); // the scaffold record, then filter and nat for each family
    for (const a of actions) {
      const r = host.apply(s, actions, a.name);
      expect(r.status, a.name).to.equal(70);
      expect(host.firewallState(), `after failing at "${a.name}"`).to.equal(before);
      expect(host.must("ls -A /var/lib/virtnet"), a.name).to.equal("");
    }
  });

  it("switches backends in place both ways, leaving nothing of the old one", () => {
    const before = host.firewallState();
    const s = spec({ mode: "nat", ipv4: { cidr: "10.50.1.0/24" } });
    applyOwn(s, "nftables");
    const names = applyOwn(s, "iptables");
    expect(names.slice(-1)).to.deep.equal(["remove firewall"]); // the nft table goes after the chains are in
    expect(host.must("nft list chains inet")).to.not.include(`${nftChainId(s.name)}.`);
    applyOwn(s, "nftables");
    expect(host.must("nft list table inet virtnet")).to.equal(renderNftables(s));
    expect(host.must("iptables-save; ip6tables-save")).to.not.include("VN-");
    removeOwn(s);
    expect(host.firewallState()).to.equal(before);
  });

  describe("beside Docker", () => {
    for (const backend of ["nftables", "iptables"] as const)
      it(`${backend}: accepts the bridge in DOCKER-USER, and delete leaves Docker's rules byte-identical`, () => {
        host.must(DOCKER_SETUP);
        const before = host.firewallState();
        const s = spec({ mode: "nat", ipv4: { cidr: "10.50.1.0/24" }, firewallBackend: backend });
        const foreign = planForeignFirewalls(s, host.observe(s));
        expect(foreign.warnings).to.deep.equal([]); // Docker's FORWARD DROP is answered, not warned about
        expect(foreign.actions.map((a) => a.name)).to.deep.equal(["accept bridge in iptables DOCKER-USER"]);
        const r = host.apply(s, [...ownFirewallActions(s, host.observe(s), backend), ...foreign.actions]);
        expect(r.status, r.stderr).to.equal(0);
        const rules = host.must("iptables -S DOCKER-USER").split("\n");
        expect(rules.slice(1, 3).sort()).to.deep.equal([
          '-A DOCKER-USER -i vn-lab -m comment --comment "virtnet: network lab" -j ACCEPT',
          '-A DOCKER-USER -o vn-lab -m comment --comment "virtnet: network lab" -j ACCEPT',
        ]);
        expect(rules[3]).to.equal("-A DOCKER-USER -j RETURN");
        expect(planForeignFirewalls(s, host.observe(s)).actions).to.deep.equal([]); // in sync
        const observed = host.observe(s);
        const del = host.apply(s, [
          ...removeOwnFirewallActions(s.name, observed),
          ...removeForeignFirewallActions(s.name, s.bridge.name, observed),
        ]);
        expect(del.status, del.stderr).to.equal(0);
        host.sh("nft delete table inet virtnet"); // the last network's delete does this (planDelete)
        expect(host.firewallState()).to.equal(before);
      });

    it("isolated networks get no accept (they forward nothing)", () => {
      host.must(DOCKER_SETUP);
      const s = spec({ mode: "isolated", ipv4: { cidr: "10.50.1.0/24" } });
      expect(planForeignFirewalls(s, host.observe(s)).actions).to.deep.equal([]);
    });

    it("records the backend only when it is iptables, so older records read as nftables", () => {
      const s = spec({ mode: "nat", ipv4: { cidr: "10.50.1.0/24" } });
      expect(appliedRecord(s, "iptables")).to.include({ firewallBackend: "iptables" });
      expect(appliedRecord(s, "iptables")).to.not.have.property("table");
      expect(appliedRecord(s, "nftables")).to.not.have.property("firewallBackend");
    });
  });

  it("parses iptables-save with counters and comments", () => {
    const listing = parseIptablesSave(
      "# Generated\n*filter\n:INPUT ACCEPT [3:120]\n:VN-x-IN - [0:0]\n-A INPUT -j VN-x-IN\n-A VN-x-IN -j ACCEPT\nCOMMIT\n",
    );
    expect(listing.tables.filter).to.deep.equal({
      policies: { INPUT: "ACCEPT", "VN-x-IN": "-" },
      rules: ["-A INPUT -j VN-x-IN", "-A VN-x-IN -j ACCEPT"],
    });
    expect(ownedState(listing, "VN-x").filter).to.deep.equal({
      chains: { "VN-x-IN": ["-A VN-x-IN -j ACCEPT"] },
      foreign: ["-A INPUT -j VN-x-IN"],
    });
  });
});
