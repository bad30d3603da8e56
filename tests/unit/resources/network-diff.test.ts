import { expect } from "chai";
import { diff } from "../../../provider/resources/network";
import { NETWORK_INPUT_KEYS } from "../../../provider/model/inputs";
import { UNKNOWN } from "../../../provider/model/validation";

const connection = { host: "198.18.0.11", hostKey: "SHA256:abc" };
const inputs = { connection, name: "lab", mode: "nat", ipv4: { cidr: "10.50.1.0/24" } };
// Old outputs carry the inputs plus what create computed.
const olds = { ...inputs, bridgeName: "vn-lab", gatewayIp: "10.50.1.1", drift: [], warnings: [] };

describe("VirtualNetwork diff", () => {
  it("lists every user-facing input key", () => {
    expect(NETWORK_INPUT_KEYS).to.include.members(["name", "mode", "ipv4", "bridge", "dns", "domain", "nat"]);
  });

  it("reports no change for identical inputs", () => {
    expect(diff("id", olds, { ...inputs })).to.deep.include({ changes: false, replaces: [] });
  });

  it("updates mode, subnet, DNS, domain, MTU and STP in place", () => {
    for (const change of [
      { mode: "route" },
      { ipv4: { cidr: "10.50.2.0/24" } },
      { dns: { hosts: [{ ip: "10.50.1.5", hostnames: ["a"] }] } },
      { domain: { name: "lab.test" } },
      { bridge: { mtu: 9000 } },
      { bridge: { stp: true } },
    ]) {
      const d = diff("id", olds, { ...inputs, ...change });
      expect(d, JSON.stringify(change)).to.deep.include({ changes: true, replaces: [] });
    }
  });

  it("replaces on a new host, creating the new one before deleting the old", () => {
    const d = diff("id", olds, { ...inputs, connection: { ...connection, host: "198.18.0.12" } });
    expect(d).to.deep.include({ changes: true, replaces: ["connection"], deleteBeforeReplace: false });
  });

  it("changes a connection detail of the same host in place", () => {
    const d = diff("id", olds, { ...inputs, connection: { ...connection, user: "vnsudo", sudo: true } });
    expect(d).to.deep.include({ changes: true, replaces: [] });
  });

  it("replaces on a new name or bridge name, deleting first because they share the host", () => {
    expect(diff("id", olds, { ...inputs, name: "lab2" })).to.deep.include({
      replaces: ["name", "bridge"],
      deleteBeforeReplace: true,
    });
    expect(diff("id", olds, { ...inputs, bridge: { name: "br-lab" } })).to.deep.include({
      replaces: ["bridge"],
      deleteBeforeReplace: true,
    });
  });

  it("asks for an update when a refresh found drift, even with unchanged inputs", () => {
    expect(diff("id", { ...olds, drift: ["apply firewall"] }, { ...inputs })).to.deep.include({
      changes: true,
      replaces: [],
    });
  });

  it("treats an unknown host as a replacement and unknown settings as changes during preview", () => {
    expect(diff("id", olds, { ...inputs, connection: { ...connection, host: UNKNOWN } }).replaces).to.include(
      "connection",
    );
    expect(diff("id", olds, { ...inputs, dns: { hosts: UNKNOWN } })).to.deep.include({
      changes: true,
      replaces: [],
    });
  });
});
