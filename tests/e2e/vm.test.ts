// A real virtual machine on a virtnet Port: QEMU boots Debian's kernel and a busybox initramfs
// (tests/support/vm.ts) on the Port's TAP; the guest's virtio NIC gets its reserved lease from the network's
// dnsmasq, its traffic goes out through the host's NAT, and getFdb shows its MAC on the Port. Everything
// virtnet does goes through the engine path. No KVM is needed (QEMU's TCG).
import { expect } from "chai";
import { networkPaths } from "../../provider/naming";
import { DhcpRange, getFdb, Port, VirtualNetwork } from "../../sdk";
import { DeploymentError, findOp, TestStack } from "../engine/engine";
import { hostExec, hostNamespace, LabHost, SERVER_ADDRESS } from "../lab/lab";
import { bootVm, killVms, vmImage, VmRun } from "../support/vm";
import { captureUpstream, labHosts, sh, snapshot, stackFor } from "./support";

const reservation = { mac: "52:54:00:15:00:01", ip: "10.86.0.50", hostname: "vm1" };

function program(opts: { fdb?: boolean; withoutPort?: boolean } = {}) {
  return () => {
    const net = new VirtualNetwork("vmnet", { mode: "nat", ipv4: { cidr: "10.86.0.0/24" } });
    new DhcpRange("vmpool", { network: net, start: "10.86.0.100", end: "10.86.0.149", hosts: [reservation] });
    // A network that serves no DHCP: a VM on its Port gets no lease.
    const quiet = new VirtualNetwork("vmquiet", { mode: "isolated", ipv4: { cidr: "10.86.1.0/24" } });
    new Port("vmnic2", { network: quiet });
    const outs: Record<string, unknown> = {};
    if (!opts.withoutPort) outs.tap = new Port("vmnic", { network: net, macAddress: reservation.mac }).name;
    if (opts.fdb) outs.fdb = getFdb({ network: net });
    return outs;
  };
}

describe("a real VM on a Port of a nat network, through the engine path", function () {
  this.timeout(180_000);
  let h1: LabHost;
  let stack: TestStack;
  let empty: string;

  before(async function () {
    this.timeout(600_000); // the first build downloads Debian's kernel; later runs use the cache
    await vmImage();
    [h1] = await labHosts(2);
    stack = stackFor(h1);
    empty = await snapshot("h1");
  });
  after(async () => {
    await killVms();
    await stack.destroy();
  });

  it("gets its reserved address on its virtio NIC, reaches the gateway and upstream masqueraded; getFdb shows it on the Port", async () => {
    const r = await stack.up(program());
    const tap = r.outputs.tap as string;
    expect(tap).to.equal("vt-vmnic");
    let fdb: { entries: any[]; ports: any[] } | undefined;
    let hostPing = -1;
    let refused = "";
    let vm: VmRun | undefined;
    const seen = await captureUpstream(
      `icmp and dst host ${SERVER_ADDRESS}`,
      async () => {
        vm = await bootVm({
          namespace: hostNamespace("h1"),
          tap,
          mac: reservation.mac,
          upstream: SERVER_ADDRESS,
          timeoutMs: 150_000,
          // While the VM is up: the host reaches it at its lease, the bridge has learned its MAC on the TAP,
          // and the Port cannot be deleted under it.
          whileUp: async ({ lease }) => {
            hostPing = (await hostExec("h1", ["busybox", "ping", "-c", "1", "-W", "2", lease])).code;
            fdb = (await stack.up(program({ fdb: true }))).outputs.fdb as typeof fdb;
            refused = await stack.up(program({ withoutPort: true })).then(
              () => "deleted",
              (e: DeploymentError) => e.message,
            );
          },
        });
      },
      { timeoutS: 150 },
    );
    expect(vm!.lease, "the VM's lease").to.equal(reservation.ip);
    expect(vm!.gateway).to.equal("10.86.0.1");
    expect(vm!.pingGateway, "the VM's ping of the gateway").to.equal(true);
    expect(vm!.pingUpstream, "the VM's ping of the upstream server").to.equal(true);
    expect(seen).to.include(`${h1.uplinkAddress} > ${SERVER_ADDRESS}`);
    expect(hostPing, "the host's ping of the VM").to.equal(0);
    expect(fdb!.entries).to.deep.include({ mac: reservation.mac, port: tap, kind: "learned" });
    expect(fdb!.ports.find((p) => p.name === tap)).to.deep.include({ state: "forwarding", isolated: false });
    expect(refused).to.include(`port ${tap}: check host: TAP ${tap} is held open by a process`);
    expect(await sh("h1", `cat ${networkPaths("vmnet").leases}`)).to.match(
      new RegExp(`${reservation.mac} ${reservation.ip.replace(/\./g, "\\.")} `),
    );
  });

  it("gets no lease on a Port of a network without DHCP: the checks above can fail", async () => {
    const vm = await bootVm({
      namespace: hostNamespace("h1"),
      tap: "vt-vmnic2",
      mac: "52:54:00:15:00:02",
      dhcpTries: 2,
      timeoutMs: 120_000,
    });
    expect(vm.lease).to.equal(null);
    expect(vm.consoleLog).to.include("VM-NO-LEASE");
  });

  it("deletes the Port once the VM is gone, and leaves the host as it was", async () => {
    const r = await stack.up(program({ withoutPort: true }));
    expect(findOp(r, "vmnic")!.op).to.equal("delete");
    expect((await hostExec("h1", ["ip", "link", "show", "dev", "vt-vmnic"])).code).to.not.equal(0);
    await stack.destroy();
    expect(await snapshot("h1")).to.equal(empty);
  });
});
