// The probe against a real kernel, in a private network and mount namespace (PrivateHost): the values it
// reads with the shell's own `read` (no process per file) must be the kernel's.
import { expect } from "chai";
import { quote } from "shell-quote";
import { legacyNftTableName, networkPaths } from "../../../provider/naming";
import { MULTI_PROBE_SCRIPT, probeArgs } from "../../../provider/ops/probe";
import { parseMultiProbe, parseProbe } from "../../../provider/observe/parse";
import { buildNetworkSpec, NetworkSpec } from "../../../provider/model/network";
import { ObservedNetwork } from "../../../provider/observe/observed";
import { PrivateHost } from "../support/privateHost";

describe("probe on a private namespace", function () {
  this.timeout(30_000);
  let host: PrivateHost;
  let spec: NetworkSpec;

  beforeEach(async () => {
    host = await PrivateHost.start();
    spec = buildNetworkSpec({ mode: "nat", ipv4: { cidr: "10.78.0.0/24" } }, "probe").spec!;
  });
  afterEach(() => host.close());

  for (const value of [1, 0]) {
    it(`reads IPv4 and IPv6 forwarding as the kernel has them (${value})`, () => {
      host.must(`sysctl -qw net.ipv4.ip_forward=${value} net.ipv6.conf.all.forwarding=${value}`);
      const o = host.observe(spec);
      expect({ v4: o.ipForward, v6: o.ip6Forward }).to.deep.equal({ v4: !!value, v6: !!value });
    });
  }

  it("reads fs.inotify.max_user_instances as the kernel has it", () => {
    const limit = Number(host.must("cat /proc/sys/fs/inotify/max_user_instances"));
    expect(host.observe(spec).inotify).to.deep.equal({ limit });
  });

  it("finds a running process behind the pid file only when it is alive, with its executable and argv", () => {
    const pidfile = "/var/lib/virtnet/probe.pid";
    const paths = { dnsmasqPid: pidfile };
    const sleeper = host.must(`sleep 30 >/dev/null 2>&1 & echo $! > ${pidfile}; cat ${pidfile}`).trim();
    const o = host.observeWith(spec, paths);
    expect(o.dnsmasq?.pid).to.equal(Number(sleeper));
    expect(o.dnsmasq?.exe).to.match(/\/sleep$/);
    expect(o.dnsmasq?.argv).to.deep.equal(["sleep", "30"]);
    host.must(`echo 999999 > ${pidfile}`);
    expect(host.observeWith(spec, paths).dnsmasq).to.equal(undefined);
  });

  it("finds each network's bridge, ports and global IPv6 addresses in the one listing of all interfaces", () => {
    host.must(
      [
        "ip link add vn-probe type bridge stp_state 1 forward_delay 400",
        "ip link set vn-probe alias virtnet:probe mtu 1400 up",
        "ip -6 addr add fd00:78::1/64 dev vn-probe nodad",
        "ip addr add 10.78.0.1/24 dev vn-probe",
        "ip link add vn-other type bridge",
        "ip link add pa type veth peer name pb",
        "ip link set pa master vn-probe",
        "ip link set pb master vn-other",
      ].join(" && "),
    );
    const nets = [
      { name: "probe", bridge: "vn-probe" },
      { name: "other", bridge: "vn-other" },
      { name: "none", bridge: "vn-none" },
    ];
    const out = host.must(
      // The multi-network probe as orchestration/probe.ts runs it: each network's probeArgs one after the other.
      `set -- ${quote(nets.flatMap((n) => probeArgs(n.name, n.bridge, networkPaths(n.name))))}\n${MULTI_PROBE_SCRIPT}`,
    );
    const [probe, other, none] = parseMultiProbe(out, nets);
    expect(probe.bridge).to.deep.include({
      kind: "bridge",
      alias: "virtnet:probe",
      mtu: 1400,
      up: true,
      stp: true,
      forwardDelay: 400,
      ports: ["pa"],
    });
    expect(probe.bridgeIpv4).to.deep.equal(["10.78.0.1/24"]);
    expect(probe.bridgeIpv6, "global only, not the link-local").to.deep.equal(["fd00:78::1/64"]);
    expect(other.bridge?.ports).to.deep.equal(["pb"]);
    expect(other.bridgeIpv4).to.deep.equal([]);
    expect(other.foreignIpv4).to.deep.include({ cidr: "10.78.0.1/24", dev: "vn-probe" });
    expect(none.bridge).to.equal(undefined);
    // The single-network probe reads the same.
    expect(host.observe(spec).bridge).to.deep.equal(probe.bridge);
  });

  it("gives every network of a multi-network probe the host's network records", () => {
    const record = (name: string) => JSON.stringify({ name, bridge: `vn-${name}`, table: "virtnet" });
    host.must(
      ["a", "b"]
        .map(
          (n) =>
            `mkdir -p /var/lib/virtnet/networks/${n} && echo '${record(n)}' > /var/lib/virtnet/networks/${n}/network.json`,
        )
        .join(" && "),
    );
    const nets = [
      { name: "a", bridge: "vn-a" },
      { name: "c", bridge: "vn-c" },
    ];
    const out = host.must(
      `set -- ${quote(nets.flatMap((n) => probeArgs(n.name, n.bridge, networkPaths(n.name))))}\n${MULTI_PROBE_SCRIPT}`,
    );
    const names = parseMultiProbe(out, nets).map((o) => o.networks.map((n) => n.name));
    expect(names).to.deep.equal([
      ["a", "b"],
      ["a", "b"],
    ]);
    expect(host.observe(spec).networks.map((n) => n.name)).to.deep.equal(["a", "b"]);
  });

  it("finds an earlier virtnet's table of a network's own for that network only, beside the shared table", () => {
    const nets = ["a", "b", "c"].map((n) => ({ name: n, bridge: `vn-${n}` }));
    const legacyA = legacyNftTableName("a");
    host.must(
      [
        `nft add table inet ${legacyA}`,
        `nft add chain inet ${legacyA} vnfw '{ type filter hook forward priority 0; }'`,
        // c's own table name with more after it, and the shared table: neither is c's.
        `nft add table inet ${legacyNftTableName("c")}x`,
        `nft add chain inet ${legacyNftTableName("c")}x vnfw`,
        "nft add table inet virtnet",
        "nft add chain inet virtnet vn_c_fwd",
      ].join(" && "),
    );
    const out = host.must(
      `set -- ${quote(nets.flatMap((n) => probeArgs(n.name, n.bridge, networkPaths(n.name))))}\n${MULTI_PROBE_SCRIPT}`,
    );
    const [a, b, c] = parseMultiProbe(out, nets);
    expect(a.legacyNftTable?.name).to.equal(legacyA);
    expect(a.legacyNftTable?.listing).to.include("chain vnfw");
    expect(b.legacyNftTable).to.equal(undefined);
    expect(c.legacyNftTable).to.equal(undefined);
    // The single-network probe reads the same.
    expect(
      host.observe(buildNetworkSpec({ mode: "nat", ipv4: { cidr: "10.78.1.0/24" } }, "a").spec!)
        .legacyNftTable?.name,
    ).to.equal(legacyA);
  });

  it("saves iptables rules of a family only where iptables-nft has a table of that family, or always (legacy)", () => {
    const chains = (o: ObservedNetwork) => ({ v4: o.firewall!.iptables.ipv4, v6: o.firewall!.iptables.ipv6 });
    const before = host.observe(spec);
    expect(before.firewall!.iptablesNft, "Debian 12's iptables is iptables-nft").to.equal(true);
    host.must("iptables -N VN-probe-test");
    const after = host.observe(spec);
    expect(JSON.stringify(chains(after).v4)).to.include("VN-probe-test");
    expect(chains(before)).to.deep.equal({ v4: { tables: {} }, v6: { tables: {} } });
    expect(chains(after).v6).to.deep.equal({ tables: {} });
    host.must("ip6tables -N VN-probe-test6");
    expect(JSON.stringify(chains(host.observe(spec)).v6)).to.include("VN-probe-test6");
  });
});

describe("firewalld's answer about the bridge's zone", () => {
  // What Debian 12's firewall-cmd 1.3 prints and exits with, as seen on the lab (tests/e2e/firewall.test.ts);
  // "exit=nobus" is the probe's own line when the host has no system bus to ask on.
  const zoneOf = (answer: string) =>
    parseProbe(`@@generation\n\n@@fwzone\n${answer}\n@@end\n`, "lab", "vn-lab").firewall!.zone;

  it("is running only when firewalld answered: with the zone or with no zone", () => {
    expect(zoneOf("trusted\nexit=0")).to.deep.equal({ running: true, zone: "trusted" });
    expect(zoneOf("no zone\nexit=2")).to.deep.equal({ running: true });
    expect(zoneOf("FirewallD is not running\nexit=252")).to.deep.equal({ running: false });
    const noDaemon = "Error: DBUS_ERROR: Failed to connect to socket /run/dbus/system_bus_socket\nexit=36";
    expect(zoneOf(noDaemon)).to.deep.equal({ running: false });
    expect(zoneOf("exit=nobus")).to.deep.equal({ running: false });
  });
});

describe("the VLANs of virtnet's VXLAN devices", () => {
  // As Debian 12's bridge (iproute2 6.1) lists a trunk with `-j -compressvlans` on a Debian kernel (the VM
  // test in tests/e2e/vlan.test.ts), and a device whose bridge is not VLAN-aware (no listing).
  const listing = [
    "vx-lab",
    '[{"ifname":"vx-lab","vlans":[{"vlan":1,"flags":["PVID","Egress Untagged"]},{"vlan":2,"vlanEnd":4094,"flags":[]}]}]',
    "vx-other",
  ].join("\n");

  it("reads each device's ranges with their flags", () => {
    const o = parseProbe(`@@generation\n\n@@vxlanvlans\n${listing}\n@@end\n`, "lab", "vn-lab");
    expect(o.vxlanVlans).to.deep.equal({
      "vx-lab": [
        { id: 1, end: 1, pvid: true, untagged: true },
        { id: 2, end: 4094, pvid: false, untagged: false },
      ],
      "vx-other": [],
    });
  });
});
