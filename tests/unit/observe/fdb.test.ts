// getFdb's read-only script and its parser against a real kernel, in a private network namespace.
import { expect } from "chai";
import { parseFdb } from "../../../provider/observe/fdb";
import { FDB_SCRIPT } from "../../../provider/ops/probe";
import { PrivateHost } from "../support/privateHost";

describe("forwarding database on a private namespace", function () {
  this.timeout(30_000);
  let host: PrivateHost;

  before(async () => {
    host = await PrivateHost.start();
    host.must(
      [
        "ip link add vn-fdb type bridge",
        "ip link set vn-fdb address 52:54:00:00:0f:01 up",
        "ip link add pa address 52:54:00:00:0f:0a type veth peer name pb",
        "ip link set pa master vn-fdb up",
        "ip link set pb up",
        "ip tuntap add dev tf0 mode tap",
        "ip link set tf0 master vn-fdb up",
        "ip link set dev tf0 type bridge_slave isolated on",
        "bridge fdb add 52:54:00:00:0f:99 dev pa master static",
        "ip link add vn-other type bridge",
      ].join(" && "),
    );
  });
  after(() => host.close());

  it("lists the bridge's entries by kind and its ports with STP state and isolation, and no other bridge's", () => {
    const r = host.sh(FDB_SCRIPT, ["vn-fdb"]);
    expect(r.status, r.stderr).to.equal(0);
    const fdb = parseFdb(r.stdout, "vn-fdb");
    expect(fdb.entries).to.deep.include({ mac: "52:54:00:00:0f:99", port: "pa", kind: "static" });
    expect(fdb.entries).to.deep.include({ mac: "52:54:00:00:0f:0a", port: "pa", kind: "static" }); // pa's own
    expect(fdb.entries.filter((e) => e.kind === "self").length).to.be.greaterThan(0);
    expect(fdb.entries.every((e) => ["vn-fdb", "pa", "tf0"].includes(e.port))).to.equal(true);
    expect(fdb.ports).to.deep.equal([
      { name: "pa", state: "forwarding", vlans: [], isolated: false },
      { name: "tf0", state: "disabled", vlans: [], isolated: true },
    ]);
  });

  it("exits 2 for a bridge the host does not have, and for an interface that is no bridge", () => {
    expect(host.sh(FDB_SCRIPT, ["vn-none"]).status).to.equal(2);
    expect(host.sh(FDB_SCRIPT, ["pa"]).status).to.equal(2);
  });

  it("reads VLANs as bridge vlan show lists them, ranges spread", () => {
    const out = [
      "@@fdb",
      '[{"mac":"52:54:00:00:0f:0a","ifname":"t1","vlan":10,"flags":[],"master":"br","state":""}]',
      "@@links",
      '[{"ifname":"t1","master":"br","state":"forwarding","isolated":false}]',
      "@@vlans",
      '[{"ifname":"t1","vlans":[{"vlan":10,"flags":["PVID","Egress Untagged"]},{"vlan":20,"vlanEnd":22}]}]',
    ].join("\n");
    expect(parseFdb(out, "br")).to.deep.equal({
      entries: [{ mac: "52:54:00:00:0f:0a", port: "t1", vlan: 10, kind: "learned" }],
      ports: [
        {
          name: "t1",
          state: "forwarding",
          isolated: false,
          vlans: [
            { id: 10, pvid: true, untagged: true },
            { id: 20, pvid: false, untagged: false },
            { id: 21, pvid: false, untagged: false },
            { id: 22, pvid: false, untagged: false },
          ],
        },
      ],
    });
  });
});
