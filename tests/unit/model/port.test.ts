// Port input validation: every property's error at check, defaults stable and within the kernel's limits.
import { expect } from "chai";
import { buildPortSpec, PortInputs, PortNetworkFacts } from "../../../provider/model/port";
import { UNKNOWN } from "../../../provider/model/validation";
import { MAX_IFNAME } from "../../../provider/naming";

const net: PortNetworkFacts = { name: "lab", bridgeName: "vn-lab", vlanFiltering: true };
const build = (inputs: PortInputs, network = net, resource = "vm1-nic0") =>
  buildPortSpec(inputs, resource, network, "198.18.0.11");

describe("Port input validation", () => {
  it("fills a stable TAP name and guest MAC, and normalizes VLANs", () => {
    const a = build({ vlan: { tagged: [20, 10], untagged: 30 } }).spec!;
    expect(a).to.deep.equal({
      name: "vt-vm1-nic0",
      network: "lab",
      bridge: "vn-lab",
      macAddress: a.macAddress,
      multiQueue: false,
      isolated: false,
      vlan: { tagged: [10, 20], untagged: 30 },
    });
    expect(a.macAddress).to.match(/^52:54:00(:[0-9a-f]{2}){3}$/);
    expect(build({}).spec!.macAddress, "the same on every run").to.equal(a.macAddress);
    expect(build({ vlan: 10 }).spec!.vlan).to.deep.equal({ untagged: 10, tagged: [] });
    expect(build({ macAddress: "52:54:00:AA:00:01", owner: 1000 }).spec).to.include({
      macAddress: "52:54:00:aa:00:01",
      owner: "1000",
    });
  });

  it("derives a TAP name of at most 15 characters from any resource name, stable and apart", () => {
    const names = ["a-very-long-port-resource-name", "a-very-long-port-resource-nam2", "with/slash", "nic0"];
    const taps = names.map((n) => build({}, net, n).spec!.name);
    for (const t of taps)
      expect(t.length)
        .to.be.at.most(MAX_IFNAME)
        .and.to.match(/^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$/);
    expect(new Set(taps).size).to.equal(names.length);
    expect(taps[3]).to.equal("vt-nic0");
    expect(build({}, net, names[0]).spec!.name).to.equal(taps[0]);
  });

  const cases: [string, PortInputs, string, RegExp, PortNetworkFacts?][] = [
    ["a name too long", { name: "a-sixteen-chars-" }, "name", /at most 15/],
    ["a name with a slash", { name: "a/b" }, "name", /only letters/],
    ["a multicast MAC", { macAddress: "01:00:5e:00:00:01" }, "macAddress", /unicast/],
    ["an all-zero MAC", { macAddress: "00:00:00:00:00:00" }, "macAddress", /all zeros/],
    ["not a MAC", { macAddress: "52:54:00:aa:00" }, "macAddress", /MAC address like/],
    ["an owner that is no user name", { owner: "Bad User" }, "owner", /not a user name or uid/],
    ["a negative uid", { owner: -1 }, "owner", /integer from 0/],
    ["multiQueue not a boolean", { multiQueue: "yes" as any }, "multiQueue", /true or false/],
    ["isolated not a boolean", { isolated: 1 as any }, "isolated", /true or false/],
    ["VLAN 0", { vlan: 0 }, "vlan", /from 1 to 4094/],
    ["VLAN 4095", { vlan: 4095 }, "vlan", /from 1 to 4094/],
    ["a VLAN that is no integer", { vlan: 10.5 }, "vlan", /integer/],
    ["a trunk VLAN out of range", { vlan: { tagged: [10, 5000] } }, "vlan.tagged[1]", /from 1 to 4094/],
    ["a trunk with duplicates", { vlan: { tagged: [10, 20, 10] } }, "vlan.tagged[2]", /listed twice/],
    ["a native VLAN also tagged", { vlan: { tagged: [10], untagged: 10 } }, "vlan.untagged", /also in/],
    ["a native VLAN out of range", { vlan: { untagged: 4095 } }, "vlan.untagged", /from 1 to 4094/],
    ["an empty trunk", { vlan: {} }, "vlan", /needs vlan.tagged/],
    ["a trunk that is a list", { vlan: [10] as any }, "vlan", /VLAN id/],
    [
      "a VLAN on a network that is not VLAN-aware",
      { vlan: 10 },
      "vlan",
      /not VLAN-aware: set bridge\.vlanFiltering/,
      { ...net, vlanFiltering: false },
    ],
  ];
  for (const [title, inputs, property, reason, network] of cases)
    it(`rejects ${title} on ${property}`, () => {
      const errors = build(inputs, network ?? net).errors;
      const hit = errors.find((e) => e.property === property);
      expect(hit, JSON.stringify(errors)).to.not.equal(undefined);
      expect(hit!.reason).to.match(reason);
    });

  it("gives no spec and no error while inputs or the network are unknown (preview)", () => {
    expect(build({ vlan: UNKNOWN as any })).to.deep.equal({ errors: [] });
    expect(build({ name: UNKNOWN })).to.deep.equal({ errors: [] });
    expect(build({}, { name: UNKNOWN, bridgeName: UNKNOWN })).to.deep.equal({ errors: [] });
    expect(
      build({ vlan: 10 }, { name: "lab", bridgeName: "vn-lab" }).spec,
      "vlanFiltering unknown",
    ).to.include({
      name: "vt-vm1-nic0",
    });
  });
});
