// Mode "bridge": a network over a bridge the host already has. Validation (each refused property named),
// the plan from hand-made observations (nothing but the record and the restore files), delete (the bridge
// stays), and the restore script (nothing to bring back).
import { expect } from "chai";
import { buildNetworkSpec, NetworkInputs, NetworkSpec } from "../../../provider/model/network";
import { networkPaths } from "../../../provider/naming";
import { ObservedBridge } from "../../../provider/observe/observed";
import { appliedRecord, planApply, planDelete } from "../../../provider/plan/network";
import { renderNetworkRestore } from "../../../provider/render/restore";
import { renderedArtifacts, specToInputs } from "../../../provider/resources/network";
import { check as checkRange } from "../../../provider/resources/dhcpRange";
import { emptyObserved } from "../support/observed";

const lan: NetworkInputs = { mode: "bridge", bridge: { name: "br0" } };
const spec = (inputs: NetworkInputs = lan): NetworkSpec => {
  const r = buildNetworkSpec(inputs, "lan");
  expect(r.errors).to.deep.equal([]);
  return r.spec!;
};
const hostBridge = (over: Partial<ObservedBridge> = {}): ObservedBridge => ({
  kind: "bridge",
  mac: "52:54:00:12:34:56",
  mtu: 1500,
  up: true,
  stp: false,
  forwardDelay: 0,
  ports: ["eth0"],
  ...over,
});
const paths = networkPaths("lan");
const names = (p: { actions: { name: string }[] }) => p.actions.map((a) => a.name);

describe('mode "bridge": validation', () => {
  it("needs only the bridge's name; no DNS, no address, no firewall, no dnsmasq", () => {
    const s = spec();
    expect(s.mode).to.equal("bridge");
    expect(s.bridge.name).to.equal("br0");
    expect(s.dns.enabled).to.equal(false);
    expect(s).to.not.have.property("ipv4");
    expect(renderedArtifacts(s)).to.deep.equal({});
  });

  const refused: [string, NetworkInputs, string][] = [
    ["no bridge name", { mode: "bridge" }, "bridge.name"],
    ["an IPv4 subnet", { ...lan, ipv4: { cidr: "192.168.1.0/24" } }, "ipv4"],
    ["an IPv6 subnet", { ...lan, ipv6: { cidr: "fd00:1::/64" } }, "ipv6"],
    ["a domain", { ...lan, domain: { name: "lan" } }, "domain"],
    ["DNS hosts", { ...lan, dns: { hosts: [{ ip: "192.168.1.5", hostnames: ["a"] }] } }, "dns"],
    ["DNS turned on", { ...lan, dns: { enabled: true } }, "dns"],
    ["a VLAN uplink", { ...lan, vlan: { id: 10, uplink: "eth1" } }, "vlan"],
    ["STP", { mode: "bridge", bridge: { name: "br0", stp: true } }, "bridge.stp"],
    ["an MTU", { mode: "bridge", bridge: { name: "br0", mtu: 9000 } }, "bridge.mtu"],
    [
      "a MAC",
      { mode: "bridge", bridge: { name: "br0", macAddress: "52:54:00:00:00:01" } },
      "bridge.macAddress",
    ],
    ["a forward device", { ...lan, forwardDevice: "eth0" }, "forwardDevice"],
    ["NAT settings", { ...lan, nat: { ipv6: true } }, "nat"],
    ["a firewall backend", { ...lan, firewallBackend: "iptables" }, "firewallBackend"],
  ];
  for (const [what, inputs, property] of refused)
    it(`refuses ${what}, naming ${property}`, () => {
      const errors = buildNetworkSpec(inputs, "lan").errors;
      expect(errors.map((e) => e.property)).to.include(property);
    });

  it("accepts DNS turned off (what a refresh of an imported network carries)", () => {
    expect(buildNetworkSpec({ ...lan, dns: { enabled: false } }, "lan").errors).to.deep.equal([]);
  });

  it("rebuilds its inputs from the host's record exactly", () => {
    const s = spec({ ...lan, autostart: false });
    expect(spec(specToInputs(s) as NetworkInputs)).to.deep.equal(s);
  });

  it("refuses a DhcpRange on it at check, naming network", () => {
    const r = checkRange(
      {},
      {
        name: "r",
        start: "192.168.1.100",
        end: "192.168.1.200",
        network: { name: "lan", mode: "bridge", bridgeName: "br0" },
        connection: { host: "h", user: "root", password: "x" },
      },
    );
    const hit = r.failures.find((f) => f.property === "network");
    expect(hit?.reason).to.match(/mode "bridge".*no DHCP server/);
  });
});

describe('mode "bridge": plans', () => {
  it("refuses a bridge that is missing, not a bridge, or a virtnet network's own", () => {
    expect(planApply(spec(), emptyObserved(), paths).errors[0]).to.match(
      /bridge br0 does not exist on this host.*HostBridge/,
    );
    const veth = emptyObserved({ bridge: hostBridge({ kind: "veth" }) });
    expect(planApply(spec(), veth, paths).errors).to.deep.equal([
      "interface br0 is not a bridge (it is a veth)",
    ]);
    const ours = emptyObserved({ bridge: hostBridge({ alias: "virtnet:lab" }) });
    expect(planApply(spec(), ours, paths).errors[0]).to.match(/virtnet network "lab"'s own bridge/);
    const taken = emptyObserved({
      bridge: hostBridge(),
      networks: [{ name: "other", mode: "bridge", bridge: "br0" }],
    });
    expect(planApply(spec(), taken, paths).errors).to.deep.equal([
      'bridge br0 is already used by virtnet network "other"',
    ]);
  });

  it("over an existing bridge writes only virtnet's files: no link, address, rule or dnsmasq", () => {
    const p = planApply(spec(), emptyObserved({ bridge: hostBridge() }), paths);
    expect(p.errors).to.deep.equal([]);
    for (const a of p.actions) expect(a.run).to.not.match(/\bip (-batch|link|addr|-[46] addr)|nft |dnsmasq /);
    expect(names(p)).to.include(`write ${paths.appliedSpec}`);
  });

  it("is in sync once recorded, and reports the bridge gone as drift", () => {
    const s = spec();
    const recorded = emptyObserved({
      bridge: hostBridge(),
      networks: [appliedRecord(s)],
      dirs: [],
    });
    const applied = planApply(s, recorded, paths);
    const record = applied.actions.find((a) => a.name === `write ${paths.appliedSpec}`);
    expect(record, "the record is as written").to.equal(undefined);
    const gone = planApply(s, { ...recorded, bridge: undefined }, paths);
    expect(gone.errors[0]).to.match(/bridge br0 does not exist/);
  });

  it("never deletes the bridge", () => {
    const o = emptyObserved({
      bridge: hostBridge(),
      networks: [appliedRecord(spec())],
      dirs: [paths.stateDir],
    });
    const p = planDelete("lan", "br0", o, paths);
    expect(p.warnings).to.deep.equal([]);
    for (const a of p.actions) expect(a.run).to.not.match(/link del|bridge_delete/);
  });

  it("brings back at boot only its run directory, which /run loses (its Ports come after it)", () => {
    const text = renderNetworkRestore(spec(), [], paths);
    const lines = text.trim().split("\n");
    expect(lines).to.have.length(2);
    expect(lines[0]).to.match(/^# virtnet: brings network "lan" back/);
    expect(lines[1]).to.equal(`mkdir -p -m 0755 /run/virtnet /run/virtnet/networks ${paths.runDir}`);
  });
});
