// The bench row "VM boot to first lease": a real VM (tests/support/vm.ts: QEMU under TCG, Debian's kernel, a
// busybox initramfs) on a virtnet Port of a nat network, from QEMU's start to the guest's DHCP lease.
import { TestStack } from "../engine/engine";
import { hostNamespace, LabHost } from "../lab/lab";
import { bootVm, killVms, vmImage } from "../support/vm";
import { portProgram } from "./port";
import { secs, Row } from "./report";
import { benchNets, median, subnetBase } from "./stacks";

const TAP = "bnvmtap0";
const MAC = "52:54:00:b0:00:01";

/** Creates one network + range on `host` through `stack`, boots the VM `rounds` times on it, removes it all. */
export async function vmBootToLeaseRow(host: LabHost, stack: TestStack, rounds: number): Promise<Row> {
  const t0 = performance.now();
  await vmImage();
  const imageMs = performance.now() - t0;
  const [n] = benchNets("bnvm", host, 119, 1);
  const leases: number[] = [];
  const totals: number[] = [];
  try {
    await stack.up(portProgram(n, 0, MAC));
    for (let i = 0; i < rounds; i++) {
      const vm = await bootVm({ namespace: hostNamespace(host.name), tap: TAP, mac: MAC });
      if (!vm.lease?.startsWith(`${subnetBase(n)}.`) || vm.bootToLeaseMs === null)
        throw new Error(`the VM got no lease on ${n.name} (lease ${vm.lease})`);
      leases.push(vm.bootToLeaseMs);
      totals.push(vm.totalMs);
    }
  } finally {
    await killVms();
    await stack.destroy();
  }
  return {
    what: "VM boot to first lease",
    figure: secs(median(leases)),
    note:
      `QEMU (TCG, 128 MB) start to the guest's lease on a Port of a virtnet nat network, median of ${rounds} ` +
      `(${leases.map(secs).join(", ")}); to power-off ${secs(median(totals))}; image ready in ${secs(imageMs)}`,
  };
}
