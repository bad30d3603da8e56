// What a hostile network reference (DhcpRange's `network: { name, bridgeName, ... }`) can do on a host: the
// real lifecycle code runs the real probe with real nft, in a private network namespace made for this test
// (nothing on this machine changes).
//
// nft joins its arguments into one command line and parses it, so a table name like
// "virtnet_x; add table inet y" would run a second nft command as root. Earlier versions took the table name
// from the reference (`network.firewallTable`); now the only table name the probe passes to nft is derived
// from the network's name, and a firewallTable in a reference (an older SDK's) is ignored.
import { spawnSync } from "node:child_process";
import { expect } from "chai";
import { LocalHost } from "../../../provider/host";
import { legacyNftTableName } from "../../../provider/naming";
import { readRange } from "../../../provider/orchestration/range";
import { check as checkRange } from "../../../provider/resources/dhcpRange";
import { rangeInputs } from "./corpus";

const NS = `hzref${process.pid}`;

function inNs(...argv: string[]) {
  return spawnSync("ip", ["netns", "exec", NS, ...argv], { encoding: "utf8" });
}

describe("hostile network reference of a DhcpRange, on a host (private netns)", function () {
  this.timeout(30_000);
  const legacy = legacyNftTableName("hzbase");

  before(() => {
    const r = spawnSync("ip", ["netns", "add", NS], { encoding: "utf8" });
    expect(r.status, r.stderr).to.equal(0);
    // An earlier virtnet's table of the network, with a chain: the probe lists it.
    expect(inNs("nft", "add", "table", "inet", legacy).status).to.equal(0);
    expect(inNs("nft", "add", "chain", "inet", legacy, "forward").status).to.equal(0);
  });
  after(() => {
    spawnSync("ip", ["netns", "del", NS]);
  });

  it("the string nft receives is parsed as commands (what would make a table name injectable)", () => {
    const r = inNs("nft", "list", "table", "inet", `${legacy}; add table inet hzdemo`);
    expect(r.status).to.equal(0);
    expect(inNs("nft", "list", "tables").stdout).to.include("table inet hzdemo");
    inNs("nft", "delete", "table", "inet", "hzdemo");
  });

  it("the only table name the probe gives nft is an identifier, whatever the network name", () => {
    for (const name of ["hzbase", "a.b-c", "x; add table inet y", "$(id)", "1net"])
      expect(legacyNftTableName(name), name).to.match(/^[A-Za-z_][A-Za-z0-9_]*$/);
  });

  it("a network.firewallTable in the reference is ignored: it never reaches nft", async () => {
    const inputs = rangeInputs();
    inputs.network.firewallTable = `inet ${legacy}; add table inet hzinjected`;
    expect(checkRange({}, inputs).failures.map((f) => f.property)).to.not.include("network.firewallTable");
    // What DhcpRange's read/create/update/delete do with the reference (refOf in resources/dhcpRange.ts).
    const host = new LocalHost({ wrap: ["ip", "netns", "exec", NS] });
    const read = await readRange(host, { name: "hzbase", bridge: "vn-hzbase" }, "hzpool").then(
      () => "read",
      (e: Error) => `refused: ${e.message}`,
    );
    expect(read).to.equal("read");
    expect(inNs("nft", "list", "tables").stdout).to.not.include("hzinjected");
  });
});
