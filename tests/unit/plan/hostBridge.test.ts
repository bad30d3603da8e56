// HostBridge: validation (each property error), the move and rollback batches (golden, from a lab host's
// listing), the probe's parsing, and what the planner refuses or reports as drift from hand-made observations.
// (tests/e2e/hostBridge.test.ts runs the move, the rollback and the delete on a lab host.)
import { expect } from "chai";
import { buildHostBridgeSpec, HostBridgeSpec } from "../../../provider/model/hostBridge";
import { hostBridgeAlias, hostBridgePaths } from "../../../provider/naming";
import { dhcpClient, ObservedHostBridge, parseHostBridgeProbe } from "../../../provider/observe/hostBridge";
import {
  hostBridgeDrift,
  hostBridgeErrors,
  hostBridgeFiles,
  tuningCommands,
  uplinkToSave,
  vlanFilteringChange,
} from "../../../provider/plan/hostBridge";
import { renderMove, renderRollback, UplinkState } from "../../../provider/render/hostBridge";
import { expectGolden } from "../golden";
import { IFUPDOWN_DHCLIENT } from "../../support/ifupdown";

const spec = (over: Record<string, unknown> = {}): HostBridgeSpec => {
  const r = buildHostBridgeSpec({ uplink: "eth0", ...over }, "br0");
  expect(r.errors).to.deep.equal([]);
  return r.spec!;
};

/** eth0 of a lab host, as `ip -j` lists it: IPv4 and IPv6, a default route per family, one in table 100. */
const eth0: UplinkState = {
  name: "eth0",
  mac: "02:76:6e:00:01:01",
  mtu: 1500,
  up: true,
  addresses: [
    { family: "inet", local: "198.19.0.11", prefixlen: 24, broadcast: "198.19.0.255", scope: "global" },
    { family: "inet6", local: "2001:db8:ff::11", prefixlen: 64, scope: "global" },
    { family: "inet6", local: "fe80::76:6eff:fe00:101", prefixlen: 64, scope: "link" },
  ],
  routes: [
    { dst: "default", gateway: "198.19.0.1", dev: "eth0", flags: [], metrics: [{ quickack: 1 }] },
    {
      dst: "198.19.0.0/24",
      dev: "eth0",
      protocol: "kernel",
      scope: "link",
      prefsrc: "198.19.0.11",
      metrics: [{ quickack: 1 }],
    },
    {
      dst: "203.0.113.0/24",
      gateway: "198.19.0.1",
      dev: "eth0",
      table: "100",
      protocol: "static",
      prefsrc: "198.19.0.11",
      metric: 7,
    },
    { type: "local", dst: "198.19.0.11", dev: "eth0", table: "local", protocol: "kernel", scope: "host" },
    { dst: "2001:db8:ff::/64", dev: "eth0", protocol: "kernel", metric: 256, pref: "medium" },
    { dst: "default", gateway: "2001:db8:ff::1", dev: "eth0", metric: 1024, pref: "medium" },
  ],
};

const observed = (over: Partial<ObservedHostBridge> = {}): ObservedHostBridge => ({
  uplink: { name: "eth0", mac: eth0.mac, mtu: 1500, up: true, kind: "veth" },
  uplinkState: eth0,
  bridgeAddresses: [],
  wireless: false,
  managers: [],
  dhcpClients: [],
  ...over,
});

describe("HostBridge: validation", () => {
  it("fills defaults: STP off, forward delay 0, confirmTimeout 30 s", () => {
    expect(spec()).to.deep.equal({
      name: "br0",
      uplink: "eth0",
      stp: false,
      forwardDelay: 0,
      confirmTimeout: 30,
    });
    expect(spec({ stp: true }).forwardDelay).to.equal(2);
  });

  const cases: [string, Record<string, unknown>, string][] = [
    ["no uplink", { uplink: undefined }, "uplink"],
    ["the loopback", { uplink: "lo" }, "uplink"],
    ["the bridge itself", { uplink: "br0" }, "uplink"],
    ["a name too long", { name: "a-very-long-bridge" }, "name"],
    ["a confirmTimeout too short", { confirmTimeout: 2 }, "confirmTimeout"],
    ["a confirmTimeout too long", { confirmTimeout: 3600 }, "confirmTimeout"],
    ["a forward delay below STP's minimum", { stp: true, forwardDelay: 1 }, "forwardDelay"],
    ["an MTU out of range", { mtu: 20 }, "mtu"],
    ["stp not a boolean", { stp: "yes" }, "stp"],
    ["vlanFiltering not a boolean", { vlanFiltering: 1 }, "vlanFiltering"],
  ];
  for (const [what, over, property] of cases)
    it(`refuses ${what}, naming ${property}`, () => {
      const r = buildHostBridgeSpec({ uplink: "eth0", ...over } as any, "br0");
      expect(r.errors.map((e) => e.property)).to.include(property);
    });
});

describe("HostBridge: the move and its rollback", () => {
  it("moves addresses and every non-kernel route whole, the bridge with the uplink's MAC (golden)", () => {
    expectGolden("hostBridge/move.batch", renderMove(spec(), eth0).join("\n") + "\n");
    expectGolden("hostBridge/rollback.batch", renderRollback(spec(), eth0).join("\n") + "\n");
  });

  it("takes each route off the uplink before its address (IPv6 routes outlive addresses), never the link-local one", () => {
    const move = renderMove(spec(), eth0);
    const firstAddrDel = move.findIndex((l) => l.startsWith("address del"));
    const routeDels = move.map((l, i) => [l, i] as const).filter(([l]) => l.startsWith("route del"));
    expect(routeDels).to.have.length(3);
    for (const [, i] of routeDels) expect(i).to.be.below(firstAddrDel);
    expect(move.join("\n")).to.not.include("fe80::");
    expect(move.filter((l) => / table local/.test(l))).to.deep.equal([]);
  });

  const atS = { ...hostBridgePaths("br0"), move: "/s/move.batch", moveVlans: "/s/move.vlans" };

  it("makes a VLAN-aware bridge, its uplink a trunk of VLANs 2-4094 after the move and at boot (golden)", () => {
    const files = hostBridgeFiles(spec({ vlanFiltering: true }), eth0, atS);
    expectGolden("hostBridge/move-vlan-filtering.batch", files.move);
    expect(files.moveVlans).to.equal("vlan add dev eth0 vid 2-4094\n");
    expect(files.rollback).to.equal(renderRollback(spec(), eth0).join("\n") + "\n");
    expect(files.restore).to.include(
      "ip link show dev br0 >/dev/null 2>&1 || { ip -force -batch /s/move.batch; bridge -force -batch /s/move.vlans; }",
    );
    const plain = hostBridgeFiles(spec(), eth0, atS);
    expect(plain.moveVlans).to.equal("");
    expect(plain.restore).to.not.include("bridge ");
  });

  it("sets an MTU on both the bridge and the uplink", () => {
    const move = renderMove(spec({ mtu: 9000 }), eth0);
    expect(move).to.include("link set dev eth0 mtu 9000");
    expect(move[1]).to.match(/mtu 9000/);
  });
});

describe("HostBridge: what the host forbids, and drift", () => {
  /** br0 as virtnet made it over eth0. */
  const bridge = {
    name: "br0",
    kind: "bridge",
    alias: hostBridgeAlias("eth0"),
    mac: eth0.mac,
    mtu: 1500,
    up: true,
    stp: false,
    forwardDelay: 0,
  };

  it("refuses an uplink that is missing, wireless, a bridge, a bridge port or a virtnet network's bridge", () => {
    expect(hostBridgeErrors(spec(), observed({ uplink: undefined }))).to.deep.equal([
      "uplink eth0 does not exist on this host",
    ]);
    expect(hostBridgeErrors(spec(), observed({ wireless: true }))[0]).to.match(/wireless/);
    const as = (u: object) => hostBridgeErrors(spec(), observed({ uplink: { ...observed().uplink!, ...u } }));
    expect(as({ kind: "bridge" })[0]).to.match(/is itself a bridge/);
    expect(as({ master: "br9" })[0]).to.match(/already a port of br9/);
    expect(as({ alias: "virtnet:lab", kind: "bridge" }).join()).to.match(/virtnet network "lab"/);
  });

  it("refuses a bridge name taken by something not virtnet's HostBridge of this uplink", () => {
    const taken = observed({
      bridge: { name: "br0", kind: "bridge", mac: "02:00:00:00:00:01", mtu: 1500, up: true },
    });
    expect(hostBridgeErrors(spec(), taken)[0]).to.match(/interface br0 already exists/);
  });

  it("refuses an uplink owned by a network manager, naming it and what to do", () => {
    const e = hostBridgeErrors(spec(), observed({ managers: ["NetworkManager"] }));
    expect(e[0]).to.match(/managed by NetworkManager.*mode "bridge"/);
  });

  it("carries ISC dhclient for IPv4 on the uplink alone, and refuses every other DHCP client, naming it", () => {
    const errors = (program: string, ...args: string[]) =>
      hostBridgeErrors(spec(), observed({ dhcpClients: [dhcpClient(9, program, [program, ...args])] }));
    expect(errors("dhclient", ...IFUPDOWN_DHCLIENT)).to.deep.equal([]);
    expect(errors("udhcpc", "-i", "eth0", "-f")[0]).to.match(
      /from udhcpc \(udhcpc -i eth0 -f\): virtnet carries ISC dhclient only \(udhcpc deconfigures/,
    );
    expect(errors("udhcpc", "-f")[0], "udhcpc's default interface").to.match(/from udhcpc/);
    expect(errors("udhcpc", "-i", "eth10")).to.deep.equal([]);
    expect(errors("dhcpcd", "eth0")[0]).to.match(
      /from dhcpcd \(dhcpcd eth0\): virtnet carries ISC dhclient only/,
    );
    expect(errors("dhclient", "-6", "eth0")[0]).to.match(/IPv4 only/);
    expect(errors("dhclient", "-v")[0]).to.match(/it serves every interface/);
    expect(errors("dhclient", "eth0", "eth1")[0]).to.match(/it serves eth0, eth1/);
    expect(errors("dhclient", "-pf", "eth0", "eth1"), "a value, not an interface").to.deep.equal([]);
    const leased = { ...eth0, addresses: [{ ...eth0.addresses[0], dynamic: true, valid_life_time: 600 }] };
    expect(hostBridgeErrors(spec(), observed({ uplinkState: leased }))[0]).to.match(
      /finite lifetime but no DHCP client/,
    );
  });

  it("saves the dhclient's command line, and starts it on the bridge with the bridge for the uplink", () => {
    const client = dhcpClient(9, "dhclient", ["dhclient", ...IFUPDOWN_DHCLIENT]);
    const saved = uplinkToSave(spec(), observed({ dhcpClients: [client] }));
    expect(saved.clients).to.deep.equal([["dhclient", ...IFUPDOWN_DHCLIENT]]);
    expect(uplinkToSave(spec(), observed())).to.not.have.property("clients");
    const leased = {
      ...saved,
      addresses: [{ ...eth0.addresses[0], dynamic: true, valid_life_time: 600, preferred_life_time: 600 }],
    };
    const files = hostBridgeFiles(spec(), leased, hostBridgePaths("br0"));
    expectGolden("hostBridge/move.client.sh", files.moveCarry!);
    expectGolden("hostBridge/rollback.client.sh", files.rollbackCarry!);
    expectGolden("hostBridge/restore-dhclient.sh", files.restore);
    expect(files.moveCarry).to.include("setsid dhclient -4 -v -i -pf /run/dhclient.eth0.pid");
    expect(files.moveCarry).to.match(/-df \/var\/lib\/dhcp\/dhclient6.eth0.leases br0 </);
    expect(files.rollbackCarry).to.match(/-df \/var\/lib\/dhcp\/dhclient6.eth0.leases eth0 </);
    expect(hostBridgeFiles(spec(), eth0, hostBridgePaths("br0"))).to.not.have.property("moveCarry");
  });

  it("reports a missing bridge, an uplink out of it, addresses moved back and tuning", () => {
    expect(hostBridgeDrift(spec(), observed({ saved: eth0 }))).to.deep.equal(["bridge br0 is missing"]);
    const drift = hostBridgeDrift(spec({ stp: true }), observed({ saved: eth0, bridge }));
    expect(drift).to.include("uplink eth0 is not in bridge br0");
    expect(drift).to.include("addresses back on eth0: 198.19.0.11, 2001:db8:ff::11");
    expect(drift.some((d) => d.startsWith("tune bridge br0 (stp on"))).to.equal(true);
    expect(
      tuningCommands(spec({ mtu: 9000 }), observed({ bridge })).map((c) => c.args.join(" ")),
    ).to.deep.equal(["link set dev eth0 mtu 9000", "link set dev br0 mtu 9000"]);
  });

  it("reports a carried DHCP client that no longer runs on the bridge", () => {
    const saved = { ...eth0, clients: [["dhclient", "eth0"]] };
    const onBr0 = dhcpClient(9, "dhclient", ["dhclient", "br0"]);
    const base = {
      saved,
      bridge,
      bridgeAddresses: eth0.addresses,
      uplinkState: { ...eth0, addresses: [] },
      uplink: { ...observed().uplink!, master: "br0" },
    };
    expect(hostBridgeDrift(spec(), observed({ ...base, dhcpClients: [onBr0] }))).to.deep.equal([]);
    expect(hostBridgeDrift(spec(), observed(base))).to.deep.equal(["no DHCP client (dhclient) runs on br0"]);
  });

  it("reports VLAN filtering turned off as drift, and turns it back on in place with its exact undo", () => {
    const eth0In = { ...observed().uplink!, master: "br0" };
    const on = spec({ vlanFiltering: true });
    const off = observed({ saved: eth0, bridge: { ...bridge, vlanFiltering: false }, uplink: eth0In });
    off.bridgeAddresses = eth0.addresses.filter((a) => a.scope !== "link");
    off.uplinkState = { ...eth0, addresses: [] };
    expect(hostBridgeDrift(on, { ...off, uplinkTrunk: true })).to.deep.equal([
      "turn VLAN filtering on for br0 (it is off), uplink eth0 a trunk of VLANs 2-4094",
    ]);
    expect(vlanFilteringChange(on, off)).to.deep.include({
      apply: ["link set dev br0 type bridge vlan_filtering 1"],
      applyVlans: ["vlan add dev eth0 vid 2-4094"],
      undo: ["link set dev br0 type bridge vlan_filtering 0"],
      undoVlans: ["vlan del dev eth0 vid 2-4094"],
    });
    const filtering = { ...off, bridge: { ...bridge, vlanFiltering: true } };
    expect(hostBridgeDrift(on, { ...filtering, uplinkTrunk: true })).to.deep.equal([]);
    expect(hostBridgeDrift(on, filtering)).to.deep.equal(["make uplink eth0 a trunk of VLANs 2-4094 again"]);
    expect(vlanFilteringChange(spec(), { ...filtering, uplinkTrunk: true })).to.deep.include({
      what: "turn VLAN filtering off for br0 (it is on)",
      apply: ["link set dev br0 type bridge vlan_filtering 0"],
      applyVlans: ["vlan del dev eth0 vid 2-4094"],
      undo: ["link set dev br0 type bridge vlan_filtering 1"],
      undoVlans: ["vlan add dev eth0 vid 2-4094"],
    });
    expect(hostBridgeDrift(spec(), off)).to.deep.equal([]);
  });

  it("parses the probe's sections", () => {
    const text = [
      "@link",
      JSON.stringify([
        {
          ifname: "eth0",
          address: eth0.mac,
          mtu: 1500,
          flags: ["UP"],
          master: "br0",
          linkinfo: { info_kind: "veth" },
        },
      ]),
      "@bridge",
      "null",
      "@addr",
      JSON.stringify([{ addr_info: eth0.addresses }]),
      "@route4",
      JSON.stringify(eth0.routes.slice(0, 4)),
      "@route6",
      JSON.stringify(eth0.routes.slice(4)),
      "@uplinkVlans",
      JSON.stringify([
        {
          ifname: "eth0",
          vlans: [
            { vlan: 1, flags: ["PVID", "Egress Untagged"] },
            { vlan: 2, vlanEnd: 4094, flags: [] },
          ],
        },
      ]),
      "@bridgeAddr",
      "null",
      "@wireless",
      "no",
      "@managers",
      "systemd-networkd",
      "@dhcp",
      `/proc/77 dhclient ${Buffer.from(["dhclient", ...IFUPDOWN_DHCLIENT, ""].join("\0")).toString("base64")}`,
      "@saved",
      "@status",
      "confirmed 0123",
      "@end",
    ].join("\n");
    const o = parseHostBridgeProbe(text);
    expect(o.uplink).to.include({ name: "eth0", master: "br0", kind: "veth", up: true });
    expect(o.bridge).to.equal(undefined);
    expect(o.uplinkState!.routes).to.have.length(6);
    expect(o.managers).to.deep.equal(["systemd-networkd"]);
    expect(o.dhcpClients).to.have.length(1);
    expect(o.dhcpClients[0]).to.include({ pid: 77, program: "dhclient" });
    expect(o.dhcpClients[0].argv).to.deep.equal(["dhclient", ...IFUPDOWN_DHCLIENT]);
    expect(o.dhcpClients[0].interfaces).to.deep.equal(["eth0"]);
    expect(o.status).to.equal("confirmed 0123");
    expect(o.saved).to.equal(undefined);
    expect(o.uplinkTrunk).to.equal(true);
    expect(parseHostBridgeProbe("@uplinkVlans\nnull\n@end\n").uplinkTrunk).to.equal(false);
  });
});
