// Which networks take a Port's VLANs at check, and a HostBridge's vlanFiltering changing in place.
import { expect } from "chai";
import { check as checkPort } from "../../../provider/resources/port";
import { diff as diffHostBridge } from "../../../provider/resources/hostBridge";

const connection = { host: "198.18.0.11", password: "x", hostKey: `SHA256:${"A".repeat(43)}` };

describe("VLAN-aware networks at check", () => {
  const port = (network: Record<string, unknown>) =>
    checkPort({}, { connection, resourceName: "nic0", vlan: 10, network }).failures;

  it("leaves a mode \"bridge\" network's VLAN-awareness to its host (its HostBridge), refusing a plain network's", () => {
    expect(port({ name: "lan", bridgeName: "br0", mode: "bridge", vlanFiltering: false })).to.deep.equal([]);
    expect(port({ name: "lab", bridgeName: "vn-lab", mode: "open", vlanFiltering: false })).to.deep.equal([
      {
        property: "vlan",
        reason: 'network "lab" is not VLAN-aware: set bridge.vlanFiltering on it to give its ports VLANs',
      },
    ]);
    expect(port({ name: "lab", bridgeName: "vn-lab", mode: "open", vlanFiltering: true })).to.deep.equal([]);
  });

  it("changes a HostBridge's vlanFiltering in place; a new uplink replaces", () => {
    const olds = { connection, name: "br0", uplink: "eth0", drift: [] };
    expect(diffHostBridge("id", olds, { ...olds, vlanFiltering: true })).to.deep.include({
      changes: true,
      replaces: [],
    });
    expect(diffHostBridge("id", olds, { ...olds, uplink: "eth1" }).replaces).to.deep.equal(["uplink"]);
  });
});
