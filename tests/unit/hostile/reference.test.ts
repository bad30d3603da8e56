// What a hostile network reference (DhcpRange's `network: { name, bridgeName, firewallTable, ... }`) does
// on a host when check() lets it through: the real lifecycle code runs the real probe with real nft, in a
// private network namespace made for this test (nothing on this machine changes).
//
// The probe runs `nft list table inet "$table"`, and nft joins its arguments into one command line and parses
// it: a firewallTable like "inet <existing table>; add table inet x" would run a second nft command as root.
// check() refuses such a reference, and the lifecycle refuses any table name that is not an nft identifier.
import { spawnSync } from "node:child_process";
import { expect } from "chai";
import { LocalHost } from "../../../provider/host";
import { readRange } from "../../../provider/network/lifecycle";
import { check as checkRange } from "../../../provider/resources/dhcpRange";
import { rangeInputs } from "./corpus";

const NS = `hzref${process.pid}`;

function inNs(...argv: string[]) {
  return spawnSync("ip", ["netns", "exec", NS, ...argv], { encoding: "utf8" });
}

describe("hostile network reference of a DhcpRange, on a host (private netns)", function () {
  this.timeout(30_000);

  before(() => {
    const r = spawnSync("ip", ["netns", "add", NS], { encoding: "utf8" });
    expect(r.status, r.stderr).to.equal(0);
    // The network's own table exists whenever its DhcpRange is read: that is all the payload needs.
    expect(inNs("nft", "add", "table", "inet", "virtnet_hzbase_000000").status).to.equal(0);
  });
  after(() => {
    spawnSync("ip", ["netns", "del", NS]);
  });

  it("the string nft receives is parsed as commands (what makes the probe injectable)", () => {
    const r = inNs("nft", "list", "table", "inet", "virtnet_hzbase_000000; add table inet hzdemo");
    expect(r.status).to.equal(0);
    expect(inNs("nft", "list", "tables").stdout).to.include("table inet hzdemo");
    inNs("nft", "delete", "table", "inet", "hzdemo");
  });

  const hostile = "inet virtnet_hzbase_000000; add table inet hzinjected";

  it("DhcpRange check() refuses a network.firewallTable that is not a table name", () => {
    const inputs = rangeInputs();
    inputs.network.firewallTable = hostile;
    const failures = checkRange({}, inputs).failures;
    expect(failures.map((f) => f.property)).to.include("network.firewallTable");
  });

  it("reading a range with such a reference never runs it as nft commands (defense in depth)", async () => {
    // What DhcpRange's read/create/update/delete do with the reference (refOf in resources/dhcpRange.ts).
    const host = new LocalHost({ wrap: ["ip", "netns", "exec", NS] });
    const ref = { name: "hzbase", bridge: "vn-hzbase", table: hostile.replace(/^inet /, "") };
    const read = await readRange(host, ref, "hzpool").then(
      () => "read",
      (e: Error) => `refused: ${e.message}`,
    );
    const tables = inNs("nft", "list", "tables").stdout;
    expect(tables, `readRange ${read}`).to.not.include("hzinjected");
  });
});
