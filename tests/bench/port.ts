// The bench rows of Ports: a real VM's NIC on a Port (tests/bench/vm.ts) and "Port create, N on one network"
// against the raw floor, `ip tuntap add` + `ip link set master` run directly inside the host.
import { DhcpRange, Port, VirtualNetwork } from "../../sdk";
import { TestStack } from "../engine/engine";
import { hostExec, LabHost } from "../lab/lab";
import { msStr, ratioStr, Row, secs } from "./report";
import { BenchNet, benchNets, bridgeOf, connectionFor, median, subnetBase } from "./stacks";

/** One NAT network with a range, and `ports` Ports on it ("bnpt-<i>"); `vmMac`: one Port for the VM, "bnvmtap0". */
export function portProgram(n: BenchNet, ports: number, vmMac?: string) {
  const connection = connectionFor(n.host);
  return async () => {
    const base = subnetBase(n);
    const net = new VirtualNetwork(n.name, { connection, mode: "nat", ipv4: { cidr: `${base}.0/24` } });
    new DhcpRange(`${n.name}-dhcp`, { network: net, start: `${base}.100`, end: `${base}.199` });
    for (let i = 0; i < ports; i++) new Port(`bnpt-${i}`, { network: net, name: `bnpt-${i}` });
    if (vmMac) new Port("bnvm", { network: net, name: "bnvmtap0", macAddress: vmMac });
    return {};
  };
}

/** The raw floor: the same TAPs made (and then removed) by `ip` directly inside the host, timed there. */
async function floorMs(host: string, bridge: string, count: number): Promise<number> {
  const script = [
    "t0=$(date +%s%N)",
    `i=0; while [ $i -lt ${count} ]; do ip tuntap add dev bnft-$i mode tap && ip link set dev bnft-$i master "$1" up || exit 1; i=$((i+1)); done`,
    "t1=$(date +%s%N)",
    `i=0; while [ $i -lt ${count} ]; do ip link del dev bnft-$i; i=$((i+1)); done`,
    "echo $(( (t1 - t0) / 1000 ))",
  ].join("\n");
  const r = await hostExec(host, ["sh", "-c", script, "sh", bridge]);
  if (r.code !== 0) throw new Error(`floor of ${count} TAPs on ${host}: exit ${r.code}: ${r.stderr}`);
  return Number(r.stdout.trim()) / 1000;
}

/** `count` Ports created in one `up` on a network that exists, against the floor; median of `rounds`. */
export async function portCreateRow(
  host: LabHost,
  stack: TestStack,
  count: number,
  rounds: number,
): Promise<Row> {
  const [n] = benchNets("bnport", host, 118, 1);
  const creates: number[] = [];
  const floors: number[] = [];
  try {
    await stack.up(portProgram(n, 0));
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      await stack.up(portProgram(n, count));
      creates.push(performance.now() - t0);
      await stack.up(portProgram(n, 0));
      floors.push(await floorMs(host.name, bridgeOf(n), count));
    }
  } finally {
    await stack.destroy();
  }
  const create = median(creates);
  const floor = median(floors);
  return {
    what: `Port create, ${count} on one network`,
    figure: secs(create),
    ratio: ratioStr(create / floor),
    note:
      `one up of ${count} Ports on an existing nat network, through the engine path (plugin start included), ` +
      `median of ${rounds} (${creates.map(secs).join(", ")}); raw floor: ip tuntap add + ip link set master ` +
      `run directly in the host, ${msStr(floor)} (${msStr(floor / count)} per TAP); ratio virtnet/floor`,
  };
}
