// Rows that other features add to the bench, one entry each: the place for them. They run after the core rows,
// on the 2-host lab (before the multi-host row rebuilds it), each as a phase of its own (a failure is an ERROR
// row; the bench goes on). An entry without `measure` is a row still to come: the table shows it as not
// measured, with what brings it.
import { RunResult, TestStack } from "../engine/engine";
import { LabHost } from "../lab/lab";
import { Row } from "./report";
import { uplinkMoveRow } from "./hostBridge";
import { portCreateRow } from "./port";
import { vxlanThroughputRow } from "./stretch";
import { vmBootToLeaseRow } from "./vm";

/** What a row's measure gets from the bench. */
export interface BenchApi {
  /** A host of the 2-host lab (h1, h2). */
  host(name: string): LabHost;
  /** A stack in the bench's project; the bench's cleanup destroys what a row leaves in it. */
  stack(): TestStack;
  /**
   * An engine run (an up or a destroy), re-run while it fails as a user would, with the SSH logins counted on
   * `hosts`: its whole time, Pulumi's fixed part of it and the provider's part (first create/delete request to
   * last response).
   */
  converge(
    label: string,
    hosts: string[],
    fn: () => Promise<RunResult>,
  ): Promise<{ wallMs: number; fixedMs?: number; providerMs?: number; ok: boolean }>;
  /** Guests (tests/lab) the bench's cleanup removes if a row leaves them. */
  guests: Set<string>;
  /** A figure for --json. */
  fig(key: string, value: unknown): void;
  /** --quick: a smoke run (fewer rounds). */
  quick: boolean;
}

export interface MoreRow {
  /** The row's label, and its phase's name. */
  what: string;
  /** Its name for --skip (--skip more skips them all). */
  skip: string;
  /** What brings it: the feature and what the row measures. */
  from: string;
  measure?: (b: BenchApi) => Promise<Row[]>;
}

export const MORE_ROWS: MoreRow[] = [
  {
    what: "uplink move gap (HostBridge)",
    skip: "uplinkmove",
    from: "the bridged-networking issue's HostBridge: how long the host's uplink address is unreachable while it moves onto the bridge",
    measure: async (b) => [await uplinkMoveRow(b.host("h1"), b.stack(), b.quick ? 1 : 3)],
  },
  {
    what: "VM boot to first lease",
    skip: "vm",
    from: "a real VM (vm.ts): QEMU's start to the guest's lease on a Port of a virtnet network",
    measure: async (b) => [await vmBootToLeaseRow(b.host("h1"), b.stack(), b.quick ? 1 : 3)],
  },
  {
    what: "Port creates",
    skip: "ports",
    from: "the Port resource (port.ts): 50 Port creates in one `up` against ip tuntap add + ip link set master",
    measure: async (b) => [await portCreateRow(b.host("h1"), b.stack(), b.quick ? 10 : 50, b.quick ? 1 : 3)],
  },
  {
    what: "VXLAN throughput",
    skip: "vxlan",
    from: "NetworkExtension (stretch.ts): guest-to-guest throughput between two hosts over VXLAN, against the same hosts' guests routed directly",
    measure: async (b) => [await vxlanThroughputRow(b.host("h1"), b.host("h2"), b.guests)],
  },
];
