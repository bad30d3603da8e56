// A real virtual machine on a virtnet network: QEMU boots Debian's kernel and a busybox initramfs
// (tests/support/vm.ts) on a TAP enslaved to the network's bridge; the guest's virtio NIC gets its lease from
// the network's dnsmasq and its traffic goes out through the host's NAT. The network goes through the engine
// path; the TAP is made by hand here until the Port resource makes it. No KVM is needed (QEMU's TCG).
import { expect } from "chai";
import { networkPaths } from "../../provider/naming";
import { DhcpRange, VirtualNetwork } from "../../sdk";
import { TestStack } from "../engine/engine";
import { hostExec, hostNamespace, LabHost, SERVER_ADDRESS } from "../lab/lab";
import { bootVm, killVms, labTapAdd, labTapDel, vmImage, VmRun } from "../support/vm";
import { captureUpstream, labHosts, sh, stackFor } from "./support";

const reservation = { mac: "52:54:00:15:00:01", ip: "10.86.0.50", hostname: "vm1" };

function program() {
  const net = new VirtualNetwork("vmnet", { mode: "nat", ipv4: { cidr: "10.86.0.0/24" } });
  new DhcpRange("vmpool", { network: net, start: "10.86.0.100", end: "10.86.0.149", hosts: [reservation] });
  return { bridgeName: net.bridgeName };
}

describe("a real VM on a nat network, through the engine path", function () {
  this.timeout(180_000);
  let h1: LabHost;
  let stack: TestStack;
  const taps: string[] = [];
  const addTap = async (tap: string, bridge?: string) => {
    taps.push(tap);
    await labTapAdd("h1", tap, bridge);
  };

  before(async function () {
    this.timeout(600_000); // the first build downloads Debian's kernel; later runs use the cache
    await vmImage();
    [h1] = await labHosts(2);
    stack = stackFor(h1);
    await stack.up(program);
  });
  after(async () => {
    await killVms();
    for (const tap of taps) await labTapDel("h1", tap);
    await stack.destroy();
  });

  it("gets its reserved address from the network's dnsmasq, reaches the gateway and upstream masqueraded", async () => {
    await addTap("vmtap0", "vn-vmnet");
    let fdb = "";
    let hostPing = -1;
    let vm: VmRun | undefined;
    const seen = await captureUpstream(
      `icmp and dst host ${SERVER_ADDRESS}`,
      async () => {
        vm = await bootVm({
          namespace: hostNamespace("h1"),
          tap: "vmtap0",
          mac: reservation.mac,
          upstream: SERVER_ADDRESS,
          timeoutMs: 120_000,
          // While the VM is up: the host reaches it at its lease, the bridge has learned its MAC on the TAP.
          whileUp: async ({ lease }) => {
            hostPing = (await hostExec("h1", ["busybox", "ping", "-c", "1", "-W", "2", lease])).code;
            fdb = await sh("h1", "bridge fdb show br vn-vmnet");
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
    expect(fdb).to.include(`${reservation.mac} dev vmtap0 master vn-vmnet`);
    expect(await sh("h1", `cat ${networkPaths("vmnet").leases}`)).to.match(
      new RegExp(`${reservation.mac} ${reservation.ip.replace(/\./g, "\\.")} `),
    );
  });

  it("gets no lease on a TAP that is on no bridge: the check above can fail", async () => {
    await addTap("vmtap1");
    const vm = await bootVm({
      namespace: hostNamespace("h1"),
      tap: "vmtap1",
      mac: "52:54:00:15:00:02",
      dhcpTries: 2,
      timeoutMs: 120_000,
    });
    expect(vm.lease).to.equal(null);
    expect(vm.consoleLog).to.include("VM-NO-LEASE");
  });
});
