// The Port planner: from hand-made observations, and applied for real on a private namespace (PrivateHost),
// where the kernel makes the TAPs.
import { expect } from "chai";
import { spawn } from "node:child_process";
import { buildNetworkSpec, NetworkSpec } from "../../../provider/model/network";
import { buildPortSpec, PortInputs, PortSpec } from "../../../provider/model/port";
import { networkPaths, portAlias, tapMac } from "../../../provider/naming";
import { ObservedNetwork, ObservedPort } from "../../../provider/observe/observed";
import { appliedRecord } from "../../../provider/plan/network";
import { planPort, planPortDelete } from "../../../provider/plan/port";
import { renderPortRestore } from "../../../provider/render/port";
import { renderRestoreEntry } from "../../../provider/render/restore";
import { emptyObserved } from "../support/observed";
import { PrivateHost } from "../support/privateHost";
import { joinedHost, member } from "../support/segment";

const network = (filtering: boolean): NetworkSpec =>
  buildNetworkSpec({ mode: "open", bridge: { vlanFiltering: filtering, mtu: 1400 } }, "lab").spec!;
const port = (inputs: PortInputs = {}): PortSpec =>
  buildPortSpec(inputs, "nic0", { name: "lab", bridgeName: "vn-lab" }, "h1").spec!;

function observed(net: NetworkSpec, over: Partial<ObservedNetwork> = {}): ObservedNetwork {
  return emptyObserved({
    networks: [appliedRecord(net)],
    bridge: {
      kind: "bridge",
      mac: "52:54:00:00:00:01",
      mtu: 1400,
      up: true,
      stp: false,
      forwardDelay: 0,
      ports: [],
    },
    dirs: ["/var/lib/virtnet", `${networkPaths("lab").stateDir}/ports`],
    restore: { systemd: false, unitEnabled: false, wantsDir: false, entry: renderRestoreEntry() },
    ...over,
  });
}

function tap(spec: PortSpec, over: Partial<ObservedPort> = {}): ObservedPort {
  return {
    name: spec.name,
    ifindex: 7,
    kind: "tun",
    tunType: "tap",
    alias: portAlias("lab"),
    master: "vn-lab",
    mtu: 1400,
    mac: tapMac(spec.macAddress),
    up: true,
    carrier: false,
    holders: [],
    isolated: false,
    multiQueue: false,
    ownerUid: null,
    vlans: [{ id: 1, pvid: true, untagged: true }],
    ...over,
  };
}

const names = (p: { actions: { name: string }[] }) => p.actions.map((a) => a.name);

describe("Port planner", () => {
  it("refuses what only the host reveals, before any change", () => {
    const spec = port({ vlan: 10, owner: "nosuchuser" });
    const errors = (o: ObservedNetwork) => planPort(spec, o).errors.join("\n");
    expect(errors(emptyObserved())).to.match(/network "lab" does not exist on this host/);
    expect(errors(observed(network(false), { portOwnerUid: 1000 }))).to.match(
      /network "lab" is not VLAN-aware/,
    );
    expect(errors(observed(network(true), { portOwnerUid: null }))).to.match(
      /owner "nosuchuser" does not exist/,
    );
    const other = observed(network(true), { portOwnerUid: 1000, port: tap(spec, { alias: undefined }) });
    expect(errors(other)).to.match(/interface vt-nic0 already exists and is not virtnet's/);
    const theirs = observed(network(true), {
      portOwnerUid: 1000,
      port: tap(spec, { alias: portAlias("x") }),
    });
    expect(errors(theirs)).to.match(/virtnet's Port on network "x"/);
    expect(planPort(spec, observed(network(true), { portOwnerUid: 1000 })).errors).to.deep.equal([]);
  });

  it("on a mode \"bridge\" network, takes the VLAN-awareness of the host's bridge (a HostBridge's)", () => {
    const lan = buildNetworkSpec({ mode: "bridge", bridge: { name: "vn-lab" } }, "lab").spec!;
    const spec = port({ vlan: 10 });
    const on = (vlanFiltering: boolean) =>
      observed(lan, { bridge: { ...observed(lan).bridge!, vlanFiltering } });
    expect(planPort(spec, on(false)).errors).to.deep.equal([
      'bridge vn-lab of network "lab" is not VLAN-aware: turn vlanFiltering on for its HostBridge (or vlan_filtering in the host\'s own bridge configuration) to give its ports VLANs',
    ]);
    const plan = planPort(spec, on(true));
    expect(plan.errors).to.deep.equal([]);
    expect(names(plan)).to.include("set VLANs of vt-nic0: 10 pvid untagged");
  });

  it("makes the TAP on its bridge with the network's MTU, then its VLANs, its record and restore file", () => {
    const spec = port({ vlan: 10, isolated: true });
    const plan = planPort(spec, observed(network(true), { dirs: [] }));
    expect(names(plan)).to.deep.equal([
      "create directory /var/lib/virtnet/networks/lab/ports",
      "create TAP vt-nic0",
      "set VLANs of vt-nic0: 10 pvid untagged",
      "write /var/lib/virtnet/networks/lab/ports/vt-nic0.json",
      "write /var/lib/virtnet/networks/lab/ports/vt-nic0.restore",
    ]);
    expect(plan.actions[1].run).to.include("tuntap add dev vt-nic0 mode tap");
    expect(plan.actions[1].run).to.include(`mtu 1400 alias virtnet-port:lab master vn-lab up`);
    expect(plan.actions[1].run).to.include("type bridge_slave isolated on");
    expect(plan.actions[2].run).to.include(
      "'vlan add dev vt-nic0 vid 10 pvid untagged' 'vlan del dev vt-nic0 vid 1'",
    );
  });

  it("changes an existing TAP in place, each change with its undo", () => {
    const spec = port({ vlan: { tagged: [10, 20], untagged: 30 }, isolated: true });
    const have = tap(spec, { master: undefined, mtu: 1500, up: false, vlans: [] });
    const plan = planPort(spec, observed(network(true), { port: have, ports: [spec] }));
    expect(names(plan)).to.deep.equal([
      "attach TAP vt-nic0 to bridge vn-lab (it is on none)",
      "set TAP vt-nic0 MTU to 1400",
      "isolate TAP vt-nic0",
      "set VLANs of vt-nic0: 10 tagged, 20 tagged, 30 pvid untagged (it has 1 pvid untagged)",
      "bring TAP vt-nic0 up",
      "write /var/lib/virtnet/networks/lab/ports/vt-nic0.restore",
    ]);
    expect(plan.actions.slice(0, 5).every((a) => a.undo)).to.equal(true);
  });

  it("has nothing to do for a TAP as the Port wants it (what refresh calls no drift)", () => {
    const spec = port();
    const o = observed(network(true), {
      port: tap(spec),
      ports: [spec],
      portRestore: renderPortRestore(spec, 1400, true),
    });
    expect(planPort(spec, o).actions).to.deep.equal([]);
  });

  it("deletes only virtnet's TAP and the last record's directory; refuses while a VM holds the TAP", () => {
    const spec = port();
    const del = (over: Partial<ObservedPort>) =>
      planPortDelete("vt-nic0", "lab", observed(network(true), { port: tap(spec, over), ports: [spec] }));
    expect(names(del({}))).to.deep.equal([
      "delete TAP vt-nic0",
      "remove /var/lib/virtnet/networks/lab/ports/vt-nic0.json",
      "remove directory /var/lib/virtnet/networks/lab/ports",
    ]);
    const held = del({ carrier: true, holders: [{ pid: 42, command: "qemu-system-x86" }] });
    expect(held.actions).to.deep.equal([]);
    expect(held.errors).to.deep.equal([
      "TAP vt-nic0 is held open by qemu-system-x86 (pid 42): stop it (or remove its NIC) first, then delete the Port again",
    ]);
    expect(del({ carrier: true }).errors.join()).to.match(/held open by a process in another pid namespace/);
    const foreign = planPortDelete(
      "vt-nic0",
      "lab",
      observed(network(true), { port: tap(spec, { alias: "x" }) }),
    );
    expect(names(foreign)).to.deep.equal(["remove directory /var/lib/virtnet/networks/lab/ports"]);
    expect(foreign.warnings.join()).to.match(/left alone/);
  });
});

describe("Port planner on a NetworkExtension's host", () => {
  const onExtension = (over: Partial<ObservedNetwork> = {}) => ({
    ...joinedHost(),
    bridge: joinedHost().bridge,
    ...over,
  });

  it("makes the TAP on the extension's bridge with the segment's MTU, in the network's directories it makes", () => {
    const spec = port();
    const plan = planPort(spec, onExtension());
    expect(plan.errors).to.deep.equal([]);
    expect(names(plan)).to.deep.equal([
      "create directory /var/lib/virtnet/networks",
      "create directory /var/lib/virtnet/networks/lab",
      "create directory /var/lib/virtnet/networks/lab/ports",
      "create TAP vt-nic0",
      "write /var/lib/virtnet/networks/lab/ports/vt-nic0.json",
      "write /var/lib/virtnet/networks/lab/ports/vt-nic0.restore",
    ]);
    expect(plan.actions[3].run).to.include(`mtu ${member.mtu} alias virtnet-port:lab master vn-lab up`);
    // VLANs only on a VLAN-aware segment.
    expect(planPort(port({ vlan: 10 }), onExtension()).errors.join()).to.match(/not VLAN-aware/);
    const aware = { ...member, vlanFiltering: true as const };
    expect(names(planPort(port({ vlan: 10 }), onExtension({ extensions: [aware] })))).to.include(
      "set VLANs of vt-nic0: 10 pvid untagged",
    );
  });

  it("refuses a host with neither the network nor an extension of it", () => {
    expect(planPort(port(), emptyObserved()).errors.join()).to.match(
      /network "lab" does not exist on this host: create its VirtualNetwork \(or a NetworkExtension of it\) first/,
    );
  });

  it("takes the network's directories along with the last Port, innermost first", () => {
    const spec = port();
    const dirs = [
      ...joinedHost().dirs,
      "/var/lib/virtnet/networks",
      "/var/lib/virtnet/networks/lab",
      "/var/lib/virtnet/networks/lab/ports",
    ];
    const plan = planPortDelete("vt-nic0", "lab", onExtension({ dirs, port: tap(spec), ports: [spec] }));
    const last = plan.actions[plan.actions.length - 1];
    expect(last.run).to.equal(
      "rmdir /var/lib/virtnet/networks/lab/ports /var/lib/virtnet/networks/lab /var/lib/virtnet/networks 2>/dev/null; :",
    );
  });
});

describe("Port planner on a private namespace", function () {
  this.timeout(30_000);
  let host: PrivateHost;
  const net = network(false);
  const record = JSON.stringify(appliedRecord(net));
  const entry = renderRestoreEntry();

  beforeEach(async () => {
    host = await PrivateHost.start();
    // The network as virtnet leaves it: its bridge and its record.
    host.must(
      `ip link add vn-lab type bridge && ip link set vn-lab address 52:54:00:00:00:01 mtu 1400 up && mkdir -p ${networkPaths("lab").stateDir} && printf '%s\\n' '${record}' > ${networkPaths("lab").appliedSpec} && printf '%s' '${entry}' > /var/lib/virtnet/restore && echo 1 > /var/lib/virtnet/generation`,
    );
  });
  afterEach(() => host.close());

  const link = (name: string) => JSON.parse(host.must(`ip -d -j link show dev ${name}`))[0];
  const apply = (spec: PortSpec, failAfter = "") => {
    const plan = planPort(spec, host.observePort(spec));
    expect(plan.errors).to.deep.equal([]);
    const r = host.applyPort(spec, plan.actions, failAfter);
    return { plan, r };
  };
  // Links (the bridge's carrier follows its ports: not the plan's), bridge ports, files.
  const state = () =>
    host.must(
      "ip -o link show | sed -E 's/(NO-CARRIER|LOWER_UP),?//g; s/state [A-Z]+//'; bridge link show; find /var/lib/virtnet | sort",
    );

  it("makes a persistent TAP the kernel lists back as the Port; isolation changes in place, same ifindex", () => {
    const spec = port({ owner: "nobody", multiQueue: true });
    const { r } = apply(spec);
    expect(r.status, r.stderr).to.equal(0);
    const l = link("vt-nic0");
    expect(l.linkinfo.info_data).to.include({
      type: "tap",
      persist: true,
      multi_queue: true,
      user: "nobody",
    });
    expect(l).to.include({
      master: "vn-lab",
      mtu: 1400,
      ifalias: "virtnet-port:lab",
      address: tapMac(spec.macAddress),
    });
    const o = host.observePort(spec);
    expect(o.port).to.include({
      kind: "tun",
      tunType: "tap",
      ownerUid: 65534,
      multiQueue: true,
      isolated: false,
      carrier: false,
    });
    expect(o.ports).to.deep.equal([spec]);
    expect(planPort(spec, o).actions, "nothing left to do").to.deep.equal([]);

    const isolated = { ...spec, isolated: true };
    expect(apply(isolated).r.status).to.equal(0);
    expect(link("vt-nic0").ifindex).to.equal(l.ifindex);
    expect(link("vt-nic0").linkinfo.info_slave_data.isolated).to.equal(true);
  });

  it("leaves the host as it was when a step fails, and a delete leaves nothing", () => {
    const before = state();
    const spec = port({ isolated: true });
    const { plan, r } = apply(spec, `write ${networkPaths("lab").stateDir}/ports/vt-nic0.json`);
    expect(plan.actions.length).to.be.greaterThan(2);
    expect(r.status).to.equal(70);
    expect(state()).to.equal(before);
    expect(apply(spec).r.status).to.equal(0);
    const del = planPortDelete(spec.name, "lab", host.observePort(spec));
    expect(host.applyPort(spec, del.actions).status).to.equal(0);
    expect(state()).to.equal(before);
  });

  it("refuses an owner the host does not have, and a name that is not virtnet's, changing nothing", () => {
    const before = state();
    expect(
      planPort(port({ owner: "nosuchuser-vn" }), host.observePort(port({ owner: "nosuchuser-vn" }))).errors,
    ).to.deep.equal(['owner "nosuchuser-vn" does not exist on the host']);
    host.must("ip tuntap add dev vt-nic0 mode tap");
    expect(planPort(port(), host.observePort(port())).errors.join()).to.match(/not virtnet's/);
    host.must("ip link del dev vt-nic0");
    expect(state()).to.equal(before);
  });

  it("refuses to delete a TAP a process holds open, naming it; deletes it once the process lets go", async () => {
    const spec = port();
    expect(apply(spec).r.status).to.equal(0);
    // A process attached to the TAP, as QEMU is.
    const holder = spawn("nsenter", [
      "--target",
      String(host.pid),
      "--net",
      "python3",
      "-c",
      HOLD_TAP,
      "vt-nic0",
    ]);
    const closed = new Promise((resolve) => holder.on("close", resolve));
    try {
      await new Promise<void>((resolve) =>
        holder.stdout.on("data", (d) => String(d).includes("attached") && resolve()),
      );
      const before = state();
      const o = host.observePort(spec);
      expect(o.port!.carrier, "carrier while held").to.equal(true);
      expect(o.port!.holders).to.deep.equal([{ pid: holder.pid, command: "python3" }]);
      const del = planPortDelete(spec.name, "lab", o);
      expect(del.errors.join()).to.match(/TAP vt-nic0 is held open by python3 \(pid \d+\)/);
      expect(state()).to.equal(before);
    } finally {
      holder.kill();
      await closed;
    }
    const o = host.observePort(spec);
    expect(o.port).to.include({ carrier: false });
    const del = planPortDelete(spec.name, "lab", o);
    expect(host.applyPort(spec, del.actions).status).to.equal(0);
    expect(host.sh("ip link show dev vt-nic0").status, "gone").to.not.equal(0);
  });
});

// Attaches to a TAP by name (TUNSETIFF, as QEMU does) and holds it until killed.
const HOLD_TAP = `
import fcntl, os, struct, sys
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", sys.argv[1].encode(), 0x0002 | 0x1000))
print("attached", flush=True)
sys.stdin.read()
`;
