// Stretched segments' plans: a member's from hand-made observations (support/segment.ts), the segment's part of
// the network's own plan, and a member made, read back, undone and removed on a real kernel (a private
// namespace): what virtnet renders is what the kernel lists, and removal leaves the namespace as it was.
import { expect } from "chai";
import { MemberRecord, SegmentRecord } from "../../../provider/model/networkExtension";
import { buildNetworkSpec } from "../../../provider/model/network";
import {
  bridgeAlias,
  EXTENSIONS_DIR,
  extensionPaths,
  networkPaths,
  STATE_DIR,
} from "../../../provider/naming";
import { firewallOf, ObservedNetwork } from "../../../provider/observe/observed";
import { parseProbe } from "../../../provider/observe/parse";
import { probeArgs, PROBE_SCRIPT } from "../../../provider/ops/probe";
import { renderApplyScript } from "../../../provider/ops/script";
import { appliedRecord, planApply, planDelete } from "../../../provider/plan/network";
import { restoreGlobalActions } from "../../../provider/plan/restore";
import { planMember, planMemberRemoval } from "../../../provider/plan/segment";
import { renderExtensionRestore } from "../../../provider/render/restore";
import { PrivateHost } from "../support/privateHost";
import { joinedHost, member, range, underlayHost } from "../support/segment";

const names = (p: { actions: { name: string }[] }) => p.actions.map((a) => a.name);
const plan = (m: MemberRecord, o: ObservedNetwork, peer?: string) =>
  planMember(m, o, restoreGlobalActions(o, true), peer);

describe("stretched segments: a member's plan", () => {
  it("makes the bridge, the VXLAN device, one FDB entry per peer and the filter on an empty host", () => {
    const p = plan(member, underlayHost(), "198.51.100.11");
    expect(p.errors).to.deep.equal([]);
    expect(names(p)).to.deep.equal([
      `create directory ${STATE_DIR}`,
      `create directory ${EXTENSIONS_DIR}`,
      "create bridge vn-lab",
      "turn IPv6 off on vn-lab",
      "bring vn-lab up",
      "create VXLAN device vx-lab",
      "add FDB entry 198.51.100.11",
      "add FDB entry 198.51.100.13",
      "create nft table inet virtnet",
      "apply segment filter",
      `write ${extensionPaths("lab").restore}`,
      `write ${extensionPaths("lab").record}`,
      `write ${STATE_DIR}/restore`,
    ]);
    // Every step has an undo; IPv6 off goes with the bridge the step before made (its undo deletes it).
    for (const a of p.actions.filter((x) => x.name !== "turn IPv6 off on vn-lab"))
      expect(a.undo, a.name).to.be.a("string");
  });

  it("is in sync once applied, and a new member only appends its FDB entry and widens the filter", () => {
    expect(names(plan(member, joinedHost()))).to.deep.equal([]);
    const wider = { ...member, peers: [...member.peers, "198.51.100.14"] };
    expect(names(plan(wider, joinedHost()))).to.deep.equal([
      "add FDB entry 198.51.100.14",
      "apply segment filter",
      `write ${extensionPaths("lab").restore}`,
      `write ${extensionPaths("lab").record}`,
    ]);
  });

  it("removes a foreign FDB entry and the entries of a member that left, learned ones too", () => {
    const o = joinedHost();
    o.fdb!["vx-lab"].push(
      { mac: "00:00:00:00:00:00", dst: "198.51.100.99", permanent: true },
      { mac: "52:54:00:00:00:09", dst: "198.51.100.13", permanent: false },
    );
    const narrower = { ...member, peers: ["198.51.100.11"] };
    const p = plan(narrower, o);
    expect(names(p)).to.include.members([
      "remove FDB entry 198.51.100.13",
      "remove FDB entry 198.51.100.99",
      "forget learned FDB entry 52:54:00:00:00:09 198.51.100.13",
      "apply segment filter",
    ]);
    expect(names(p)).to.not.include("add FDB entry 198.51.100.11");
  });

  it("makes a VXLAN device anew when its VNI or local address is not the record's", () => {
    const o = joinedHost();
    o.links!.find((l) => l.name === "vx-lab")!.vxlan!.vni = 7;
    expect(names(plan(member, o)).slice(0, 4)).to.deep.equal([
      "delete VXLAN device vx-lab",
      "create VXLAN device vx-lab",
      "add FDB entry 198.51.100.11",
      "add FDB entry 198.51.100.13",
    ]);
  });

  const refusals: [string, (o: ObservedNetwork) => void, RegExp][] = [
    [
      "the network's own host",
      (o) => o.networks.push({ name: "lab", mode: "nat", bridge: "vn-lab" }),
      /has virtnet network "lab" itself/,
    ],
    [
      "a second extension of the network",
      (o) => o.extensions!.push({ ...member, extension: "lab-other" }),
      /already has extension "lab-other" on this host/,
    ],
    [
      "a VNI in a VXLAN device virtnet did not make",
      (o) =>
        o.links!.push({
          name: "vxfoo",
          mtu: 1450,
          up: true,
          addresses: [],
          vxlan: { vni: member.vni, port: 4789, learning: true },
        }),
      /VNI 4242 is used by VXLAN device vxfoo, which virtnet did not make/,
    ],
    [
      "a local address the host does not have",
      (o) => (o.links![0].addresses = ["198.51.100.99"]),
      /198\.51\.100\.12 is not an address of this host/,
    ],
    ["no route to the network's host", (o) => (o.route.gatewayLookup = {}), /no route to 198\.51\.100\.11/],
    [
      "an underlay with no room for the overhead",
      (o) => (o.links![0].mtu = 1480),
      /MTU 1450 leaves no room for VXLAN's 50 bytes: eth0.*has MTU 1480 \(at most 1430\)/,
    ],
    [
      "a bridge of that name that is not the extension's",
      (o) => (o.bridge = { ...joinedHost().bridge!, alias: bridgeAlias("lab") }),
      /bridge vn-lab belongs to virtnet network "lab"/,
    ],
    ["a host without nft", (o) => (o.firewall = { ...firewallOf(o), tools: [] }), /"nft" is not installed/],
  ];
  for (const [what, change, message] of refusals)
    it(`refuses ${what}, with nothing to do`, () => {
      const o = underlayHost({ extensions: [] });
      change(o);
      const p = plan(member, o, "198.51.100.11");
      expect(p.errors.join("; ")).to.match(message);
      expect(p.actions).to.deep.equal([]);
    });

  it("takes everything off, and virtnet's host-wide pieces with the last of virtnet on the host", () => {
    const o = joinedHost();
    const p = planMemberRemoval("lab", "vn-lab", o, restoreGlobalActions(o, false));
    expect(names(p)).to.deep.equal([
      "delete VXLAN device vx-lab",
      "remove segment filter",
      "delete bridge vn-lab",
      `remove ${extensionPaths("lab").record}`,
      `remove directory ${EXTENSIONS_DIR}`,
      "remove nft table inet virtnet",
      `remove ${STATE_DIR}/restore`,
      `remove directory ${STATE_DIR}`,
    ]);
    const kept = { ...o, networks: [{ name: "other", mode: "nat", bridge: "vn-other" }] };
    expect(names(planMemberRemoval("lab", "vn-lab", kept, []))).to.not.include(
      `remove directory ${STATE_DIR}`,
    );
    expect(names(planMemberRemoval("lab", "vn-lab", underlayHost(), []))).to.deep.equal([]);
  });
  it("refuses to take the extension off while a Port is on its bridge, naming it", () => {
    const o = joinedHost();
    const tap = {
      name: "vt-nic0",
      kind: "tun",
      alias: "virtnet-port:lab",
      mtu: 1450,
      up: true,
      master: "vn-lab",
      addresses: [],
    };
    const p = planMemberRemoval("lab", "vn-lab", { ...o, links: [...o.links!, tap] }, []);
    expect(p.actions).to.deep.equal([]);
    expect(p.errors).to.deep.equal([
      'Port vt-nic0 of network "lab" is on vn-lab on this host: delete it first',
    ]);
  });
});

/** The network host's record of a segment that h2 has joined. */
const segmentOfH2 = (): SegmentRecord => ({
  vni: member.vni,
  port: 4789,
  mtu: 1450,
  local: member.local,
  members: [{ extension: "lab-h2", host: "root@h2:22", address: "198.51.100.13" }],
});

describe("stretched segments: the network's own host", () => {
  const spec = buildNetworkSpec({ mode: "nat", ipv4: { cidr: "10.60.0.0/24" } }, "lab").spec!;
  const paths = networkPaths("lab");
  const segment = segmentOfH2();

  it("adds the VXLAN device, its FDB, filter and record to the network's plan, and the MTU to dnsmasq", () => {
    const p = planApply(spec, underlayHost(), paths, { segment, ranges: [range] });
    expect(p.errors).to.deep.equal([]);
    const n = names(p);
    const order = [
      "create bridge",
      "create VXLAN device vx-lab",
      "add FDB entry 198.51.100.13",
      "apply segment filter",
    ];
    expect(order.map((x) => n.indexOf(x))).to.satisfy((ix: number[]) =>
      ix.every((v, i) => v >= 0 && (i === 0 || v > ix[i - 1])),
    );
    expect(n).to.include(`write ${paths.segment}`);
    const conf = p.actions.find((a) => a.name === `write ${paths.dnsmasqConf}`)!;
    expect(conf.run).to.include("dhcp-option-force=option:mtu,1450");
    expect(n.filter((x) => x === "create nft table inet virtnet")).to.have.length(1);
  });

  it("refuses a network whose bridge.mtu is not the segment's", () => {
    const wide = buildNetworkSpec(
      { mode: "nat", ipv4: { cidr: "10.60.0.0/24" }, bridge: { mtu: 1500 } },
      "lab",
    ).spec!;
    expect(planApply(wide, underlayHost(), paths, { segment }).errors.join()).to.match(
      /stretched over VXLAN with MTU 1450/,
    );
  });

  it("removes the VXLAN device and filter when the network is deleted", () => {
    const o = {
      ...joinedHost({ ...member, network: "lab" }),
      networks: [appliedRecord(spec)],
      bridge: { ...joinedHost().bridge!, alias: bridgeAlias("lab") },
    };
    const n = names(planDelete("lab", "vn-lab", o, paths));
    expect(n).to.include.members(["delete VXLAN device vx-lab", "remove segment filter"]);
  });
});

describe("stretched segments: a VLAN-aware network", () => {
  const aware: MemberRecord = { ...member, vlanFiltering: true };
  const trunk = "carry VLANs 2-4094 on vx-lab";

  it("makes the member's bridge VLAN-aware and its VXLAN device a trunk of VLANs 2-4094, restored at boot", () => {
    const p = plan(aware, underlayHost(), "198.51.100.11");
    expect(p.errors).to.deep.equal([]);
    expect(p.actions.find((a) => a.name === "create bridge vn-lab")!.run).to.include("vlan_filtering 1");
    const carry = p.actions.find((a) => a.name === trunk)!;
    expect(carry.run).to.include("'vlan add dev vx-lab vid 2-4094'");
    expect(carry.undo).to.include("'vlan del dev vx-lab vid 2-4094'");
    expect(renderExtensionRestore(aware)).to.include("bridge vlan add dev vx-lab vid 2-4094");
    expect(renderExtensionRestore(aware)).to.include("vlan_filtering 1");
    expect(names(plan(member, underlayHost(), "198.51.100.11"))).to.not.include(trunk);
  });

  it("is in sync when the device carries them, and repairs a device or bridge that does not", () => {
    const joined = joinedHost(aware);
    const o: ObservedNetwork = {
      ...joined,
      bridge: { ...joined.bridge!, vlanFiltering: true },
      extensionRestores: { lab: renderExtensionRestore(aware) },
      vxlanVlans: {
        "vx-lab": [
          { id: 1, end: 1, pvid: true, untagged: true },
          { id: 2, end: 4094, pvid: false, untagged: false },
        ],
      },
    };
    expect(names(plan(aware, o))).to.deep.equal([]);
    const partial = { "vx-lab": [{ id: 1, end: 1, pvid: true, untagged: true }] };
    expect(names(plan(aware, { ...o, vxlanVlans: partial }))).to.deep.equal([trunk]);
    expect(names(plan(aware, { ...o, bridge: { ...o.bridge!, vlanFiltering: false } }))).to.deep.equal([
      "turn VLAN filtering on on vn-lab",
    ]);
  });

  it("makes the network host's VXLAN device a trunk, and refuses a change of vlanFiltering while stretched", () => {
    const spec = buildNetworkSpec(
      { mode: "nat", ipv4: { cidr: "10.60.0.0/24" }, bridge: { vlanFiltering: true } },
      "lab",
    ).spec!;
    const segment: SegmentRecord = { ...segmentOfH2(), vlanFiltering: true };
    const p = planApply(spec, underlayHost(), networkPaths("lab"), { segment });
    expect(p.errors).to.deep.equal([]);
    expect(names(p)).to.include(trunk);
    const { vlanFiltering: _off, ...plain } = segment;
    expect(planApply(spec, underlayHost(), networkPaths("lab"), { segment: plain }).errors.join()).to.match(
      /bridge.vlanFiltering true: the network is stretched over VXLAN with vlanFiltering false; remove its NetworkExtensions/,
    );
  });
});

describe("stretched segments: a member on a real kernel", function () {
  this.timeout(30_000);
  let host: PrivateHost;
  // Links, addresses (without the kernel's own IPv6 link-local ones), nftables and virtnet's files.
  const STATE =
    "ip -o link; ip -o addr | grep -v ' fe80::'; nft list ruleset; find /var/lib/virtnet -mindepth 1 | sort";
  const scope = "extension lab";
  const args = (gw = "") => probeArgs(scope, member.bridge, networkPaths("extension_lab"), gw);
  const probe = (gw = "") => {
    const r = host.sh(PROBE_SCRIPT, args(gw));
    if (r.status !== 0) throw new Error(r.stderr);
    return parseProbe(r.stdout, scope, member.bridge);
  };
  const apply = (actions: { name: string; run: string; undo?: string }[], failAfter = "") =>
    host.sh(renderApplyScript(actions, true), [...args(), probe().generation, failAfter]);

  beforeEach(async () => {
    host = await PrivateHost.start();
    host.must(
      "ip link add eth0 type veth peer name eth1 && ip addr add 198.51.100.12/24 dev eth0 && ip link set eth0 up && ip link set eth1 up",
    );
  });
  afterEach(() => host.close());

  it("lists back what it rendered: in sync after one apply, and removed without a trace", () => {
    const clean = host.must(STATE);
    const first = plan(member, probe("198.51.100.11"), "198.51.100.11");
    const r = apply(first.actions);
    expect(r.status, r.stderr).to.equal(0);
    const o = probe("198.51.100.11");
    expect(names(plan(member, o, "198.51.100.11"))).to.deep.equal([]);
    expect(host.must("ip -o addr show dev vn-lab")).to.equal("");
    expect(host.must("bridge fdb show dev vx-lab | grep 'self permanent' | sort")).to.equal(
      "00:00:00:00:00:00 dst 198.51.100.11 self permanent\n00:00:00:00:00:00 dst 198.51.100.13 self permanent\n",
    );
    const gone = apply(planMemberRemoval("lab", member.bridge, o, restoreGlobalActions(o, false)).actions);
    expect(gone.status, gone.stderr).to.equal(0);
    expect(host.must(STATE)).to.equal(clean);
  });

  it("undoes every step of a member that fails half way", () => {
    const clean = host.must(STATE);
    const r = apply(plan(member, probe()).actions, `write ${extensionPaths("lab").record}`);
    expect(r.status).to.equal(70);
    expect(host.must(STATE)).to.equal(clean);
  });

  it("brings a member back from its restore script alone", () => {
    const r = apply(plan(member, probe()).actions);
    expect(r.status, r.stderr).to.equal(0);
    host.must("ip link del vx-lab; ip link del vn-lab; nft flush ruleset");
    host.must(`sh ${extensionPaths("lab").restore}`);
    expect(names(plan(member, probe()))).to.deep.equal([]);
  });
});
