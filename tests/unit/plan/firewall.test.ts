// Choosing the firewall backend, living beside Docker and firewalld, and bringing it all back at boot.
import { expect } from "chai";
import { emptyObserved } from "../support/observed";
import { quote } from "shell-quote";
import { networkPaths } from "../../../provider/naming";
import { nftChainNames } from "../../../provider/render/nftables";
import { chooseFirewallBackend, firewallSummary, ownFirewallActions } from "../../../provider/plan/firewall";
import { ObservedFirewall, ObservedNetwork } from "../../../provider/observe/observed";
import { appliedRecord, planApply, planDelete } from "../../../provider/plan/network";
import { buildNetworkSpec, NetworkInputs, NetworkSpec } from "../../../provider/model/network";
import { parseIptablesSave } from "../../../provider/render/iptables";
import { renderNetworkRestore } from "../../../provider/render/restore";
import { PrivateHost } from "../support/privateHost";

const fwcmd = (...args: string[]) => quote(["firewall-cmd", ...args]);

const ipv4 = { cidr: "10.50.1.0/24" };
const paths = networkPaths("lab");

function spec(inputs: NetworkInputs, name = "lab"): NetworkSpec {
  const r = buildNetworkSpec(inputs, name);
  expect(r.errors).to.deep.equal([]);
  return r.spec!;
}

function firewall(over: Partial<ObservedFirewall> = {}): ObservedFirewall {
  return {
    tools: ["nft", "iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save"],
    iptablesNft: true,
    iptables: { ipv4: { tables: {} }, ipv6: { tables: {} } },
    nftChains: [],
    nftTables: [],
    virtnetTable: false,
    scaffold: [],
    ...over,
  };
}

function host(fw: ObservedFirewall = firewall()): ObservedNetwork {
  return emptyObserved({ firewall: fw });
}

const DOCKER_FILTER = parseIptablesSave("*filter\n:FORWARD DROP\n:DOCKER-USER - [0:0]\nCOMMIT\n");
const names = (p: { actions: { name: string }[] }) => p.actions.map((a) => a.name);

describe("firewall backend", () => {
  const nat = spec({ mode: "nat", ipv4 });

  it("auto: nftables when the host has nft, else iptables", () => {
    expect(chooseFirewallBackend(nat, host())).to.deep.equal({ backend: "nftables" });
    const noNft = host(
      firewall({ tools: ["iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save"] }),
    );
    expect(chooseFirewallBackend(nat, noNft)).to.deep.equal({ backend: "iptables" });
    const plan = planApply(nat, noNft, paths);
    expect(names(plan)).to.include.members([
      "apply firewall: iptables filter",
      "apply firewall: iptables nat",
    ]);
    expect(names(plan)).to.not.include("apply firewall");
  });

  it("auto keeps the backend the network was applied with, so delete and refresh read the same one", () => {
    const h = host();
    h.networks.push(appliedRecord(nat, "iptables"));
    expect(chooseFirewallBackend(nat, h).backend).to.equal("iptables");
    h.networks = [appliedRecord(nat)]; // records from before the choice existed: nftables
    expect(chooseFirewallBackend(nat, h).backend).to.equal("nftables");
  });

  it("an explicit backend wins, and records itself", () => {
    const s = spec({ mode: "nat", ipv4, firewallBackend: "iptables" });
    const plan = planApply(s, host(), paths);
    const write = plan.actions.find((a) => a.name === `write ${paths.appliedSpec}`)!;
    expect(write.run).to.match(/firewallBackend\W+iptables/);
    expect(firewallSummary(s, host())).to.deep.equal({
      backend: "iptables",
      chains: ["VN-f068b3da-FWD", "VN-f068b3da-IN", "VN-f068b3da-NAT", "VN-f068b3da-OUT"],
    });
    expect(firewallSummary(nat, host())).to.deep.equal({
      backend: "nftables",
      table: "inet virtnet",
      chains: nftChainNames(nat.name), // NAT: input, output, forward and postrouting
    });
  });

  it("iptables rules go into chains every network shares, so they never run in a batch; nft chains do", () => {
    const s = spec({ mode: "nat", ipv4, firewallBackend: "iptables" });
    const ipt = ownFirewallActions(s, host(), "iptables");
    expect(ipt.length).to.be.greaterThan(0);
    expect(ipt.every((a) => a.shared)).to.equal(true);
    const withTable = host(firewall({ virtnetTable: true }));
    expect(ownFirewallActions(nat, withTable, "nftables").map((a) => [a.name, !!a.shared])).to.deep.equal([
      ["apply firewall", false],
    ]);
    // The first network makes the shared table: that plan runs alone, so a rollback may remove the table.
    expect(ownFirewallActions(nat, host(), "nftables").map((a) => [a.name, !!a.shared])).to.deep.equal([
      ["create nft table inet virtnet", true],
      ["apply firewall", false],
    ]);
  });

  it("refuses, before any change, a backend whose commands the host lacks, naming them", () => {
    const s = spec({ mode: "nat", ipv4, firewallBackend: "iptables" });
    const plan = planApply(s, host(firewall({ tools: ["nft"] })), paths);
    expect(plan.actions).to.deep.equal([]);
    expect(plan.errors.join()).to.match(
      /firewallBackend "iptables".*"iptables-restore", "ip6tables-restore"/,
    );
    const noFirewall = host(firewall({ tools: [] }));
    expect(planApply(nat, noFirewall, paths).errors.join()).to.match(/command "nft" is not installed/);
    expect(planApply(spec({ mode: "open", ipv4 }), noFirewall, paths).errors).to.deep.equal([]);
  });

  it("validates firewallBackend and bridge.zone at check, naming the property", () => {
    const errs = buildNetworkSpec(
      { mode: "nat", ipv4, firewallBackend: "pf", bridge: { zone: "a b" } },
      "lab",
    ).errors;
    expect(errs.map((e) => e.property)).to.have.members(["firewallBackend", "bridge.zone"]);
    expect(buildNetworkSpec({ mode: "nat", ipv4, firewallBackend: "auto" }, "lab").spec).to.not.have.property(
      "firewallBackend",
    );
  });
});

describe("firewalls that are not ours", () => {
  it("Docker: accepts the bridge in DOCKER-USER instead of warning about FORWARD DROP", () => {
    const h = host(firewall({ iptables: { ipv4: DOCKER_FILTER, ipv6: { tables: {} } } }));
    h.forwardChainsWithDrop = ["ip filter FORWARD"];
    for (const mode of ["nat", "route", "open"]) {
      const plan = planApply(spec({ mode, ipv4 }), h, paths);
      expect(plan.warnings, mode).to.deep.equal([]);
      expect(names(plan), mode).to.include("accept bridge in iptables DOCKER-USER");
    }
    expect(names(planApply(spec({ mode: "isolated", ipv4 }), h, paths))).to.not.include(
      "accept bridge in iptables DOCKER-USER",
    );
  });

  it("any other dropping forward chain still gets the warning, also an iptables-legacy one", () => {
    const h = host();
    h.forwardChainsWithDrop = ["inet userfw forward"];
    expect(planApply(spec({ mode: "nat", ipv4 }), h, paths).warnings.join()).to.match(
      /"inet userfw forward" has policy drop/,
    );
    const legacy = host(
      firewall({
        iptablesNft: false,
        iptables: { ipv4: parseIptablesSave("*filter\n:FORWARD DROP\n"), ipv6: { tables: {} } },
      }),
    );
    expect(planApply(spec({ mode: "route", ipv4 }), legacy, paths).warnings.join()).to.match(
      /"iptables filter FORWARD" has policy drop.*DOCKER-USER -i vn-lab/,
    );
  });

  it("firewalld: says at create what blocks the network and how to fix it", () => {
    const h = host(firewall({ nftTables: ["inet firewalld"] }));
    const w = planApply(spec({ mode: "nat", ipv4 }), h, paths).warnings.join("\n");
    expect(w).to.include('firewalld is active on this host (nft table "inet firewalld")');
    expect(w).to.include("firewall-cmd --zone=trusted --add-interface=vn-lab");
    expect(w).to.include('its own zone "libvirt"');
    expect(w).to.include("bridge.zone");
    const zoned = host(
      firewall({ nftTables: ["inet firewalld"], tools: ["nft", "firewall-cmd"], zone: { running: true } }),
    );
    expect(
      planApply(spec({ mode: "nat", ipv4, bridge: { zone: "trusted" } }), zoned, paths).warnings,
    ).to.deep.equal([]);
  });

  it("bridge.zone without firewall-cmd, or with firewalld stopped, fails before any change, naming it", () => {
    const s = spec({ mode: "nat", ipv4, bridge: { zone: "libvirt" } });
    const plan = planApply(s, host(), paths);
    expect(plan.actions).to.deep.equal([]);
    expect(plan.errors.join()).to.match(
      /bridge.zone "libvirt" needs firewalld, but command "firewall-cmd" is not installed/,
    );
    const stopped = planApply(
      s,
      host(firewall({ tools: ["nft", "firewall-cmd"], zone: { running: false } })),
      paths,
    );
    expect(stopped.errors.join()).to.match(/firewalld, which is not running/);
  });

  it("bridge.zone: puts the bridge in the zone, moves it, takes it out when unset and on delete", () => {
    const fw = (zone?: string) => firewall({ tools: ["nft", "firewall-cmd"], zone: { running: true, zone } });
    const s = spec({ mode: "nat", ipv4, bridge: { zone: "trusted" } });
    const add = planApply(s, host(fw()), paths).actions.find(
      (a) => a.name === "put bridge in firewalld zone trusted",
    )!;
    expect(add.run).to.equal(fwcmd("--zone=trusted", "--add-interface=vn-lab"));
    expect(add.undo).to.equal(fwcmd("--zone=trusted", "--remove-interface=vn-lab"));
    const move = planApply(s, host(fw("public")), paths).actions.find((a) =>
      a.name.startsWith("put bridge"),
    )!;
    expect(move.run).to.equal(fwcmd("--zone=trusted", "--change-interface=vn-lab"));
    expect(move.undo).to.equal(fwcmd("--zone=public", "--change-interface=vn-lab"));
    expect(names(planApply(s, host(fw("trusted")), paths))).to.not.include(
      "put bridge in firewalld zone trusted",
    );

    const applied = host(fw("trusted"));
    applied.networks.push(appliedRecord(s));
    const unset = spec({ mode: "nat", ipv4 });
    const out = planApply(unset, applied, paths).actions.find((a) => a.name.startsWith("take bridge out"))!;
    expect(out.run).to.equal(fwcmd("--zone=trusted", "--remove-interface=vn-lab"));
    const del = planDelete("lab", "vn-lab", applied, paths);
    expect(del.actions.find((a) => a.name === "take bridge out of firewalld zone trusted")!.run).to.equal(
      fwcmd("--zone=trusted", "--remove-interface=vn-lab"),
    );
  });

  it("the zone of a bridge virtnet did not put there is left alone on delete", () => {
    const h = host(firewall({ tools: ["nft", "firewall-cmd"], zone: { running: true, zone: "public" } }));
    h.networks.push(appliedRecord(spec({ mode: "nat", ipv4 })));
    expect(names(planDelete("lab", "vn-lab", h, paths)).join()).to.not.include("zone");
  });
});

describe("boot restore of the firewall", () => {
  it("restores iptables chains, adds each jump only when missing, and brings back Docker's accepts and the zone", () => {
    const s = spec({ mode: "nat", ipv4, firewallBackend: "iptables", bridge: { zone: "trusted" } });
    const text = renderNetworkRestore(s, [], paths, { backend: "iptables", dockerUser: ["ipv4"] });
    expect(text).to.not.include("nft -f");
    expect(text).to.match(/\| iptables-restore -w --noflush\n/);
    expect(text).to.match(/\| ip6tables-restore -w --noflush\n/);
    expect(text).to.include(
      "iptables -w -t filter -C FORWARD -m comment --comment 'virtnet: network lab' -j VN-f068b3da-FWD 2>/dev/null || iptables -w -t filter -I FORWARD -m comment --comment 'virtnet: network lab' -j VN-f068b3da-FWD",
    );
    expect(text).to.include(
      "if iptables -w -n -L DOCKER-USER >/dev/null 2>&1 || { command -v dockerd >/dev/null 2>&1 && iptables -w -N DOCKER-USER; }; then",
    );
    expect(text).to.include(`${fwcmd("--zone=trusted", "--change-interface=vn-lab")} >/dev/null 2>&1`);
  });

  it("a restore script run twice on a private namespace gives the same rules as one apply", async () => {
    const h = await PrivateHost.start();
    try {
      // Without its dnsmasq lines the script makes the bridge, the firewall and forwarding, all in the namespace.
      const s = spec({
        mode: "nat",
        ipv4,
        ipv6: { cidr: "fd00:50:1::/64" },
        firewallBackend: "iptables",
      });
      const script = renderNetworkRestore(s, [], paths, { backend: "iptables", dockerUser: [] })
        .split("\n")
        .filter((l) => !/dnsmasq|^mkdir/.test(l))
        .join("\n");
      h.must(script);
      const once = h.firewallState();
      h.must(script);
      expect(h.firewallState()).to.equal(once);
      const planned = planApply(s, h.observe(s), paths).actions.map((a) => a.name);
      expect(planned.filter((n) => n.includes("firewall"))).to.deep.equal([]);
    } finally {
      h.close();
    }
  });
});
