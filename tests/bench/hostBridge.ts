// The bench row of HostBridge: how long h1's uplink address goes unanswered while HostBridge moves eth0 into a
// bridge (an `up`) and back (a `destroy`), seen from upstream by a ping every 10 ms, and the time from create
// to the confirmation over a new SSH connection.
import { HostBridge } from "../../sdk";
import { findResource, TestStack } from "../engine/engine";
import { hostExec, LabHost, upstreamExec } from "../lab/lab";
import { msStr, Row, verdict } from "./report";
import { connectionFor, median } from "./stacks";

const BRIDGE = "vnbhb0";
const INTERVAL_MS = 10;
/** An unusual payload size marks the bench's own ping, so that it alone is stopped. */
const MARK_SIZE = "37";

export interface PingGap {
  /** Replies missing between the first and the last one received. */
  lost: number;
  /** The longest time between two replies, in ms (one interval when nothing was lost). */
  gapMs: number;
}

/** The lost replies and the longest gap, from ping's output (`icmp_seq=N` of each reply). */
export function pingGap(output: string, intervalMs = INTERVAL_MS): PingGap {
  const seqs = [...output.matchAll(/icmp_seq=(\d+)/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
  if (seqs.length < 2) throw new Error(`too few ping replies to measure a gap: ${output.slice(0, 300)}`);
  let lost = 0;
  let widest = 1;
  for (let i = 1; i < seqs.length; i++) {
    const step = seqs[i] - seqs[i - 1];
    if (step > 1) lost += step - 1;
    widest = Math.max(widest, step);
  }
  return { lost, gapMs: widest * intervalMs };
}

/** Pings `address` from upstream every 10 ms while `fn` runs (and 300 ms either side). */
async function pingedDuring<T>(address: string, fn: () => Promise<T>): Promise<{ result: T; gap: PingGap }> {
  const ping = upstreamExec([
    "timeout",
    "-s",
    "INT",
    "120",
    "ping",
    "-n",
    "-i",
    String(INTERVAL_MS / 1000),
    "-W",
    "1",
    "-s",
    MARK_SIZE,
    address,
  ]);
  await new Promise((r) => setTimeout(r, 300));
  let result: T;
  try {
    result = await fn();
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    await upstreamExec([
      "pkill",
      "-INT",
      "-f",
      `ping -n -i ${INTERVAL_MS / 1000} -W 1 -s ${MARK_SIZE} ${address}`,
    ]);
  }
  const out = await ping;
  return { result, gap: pingGap(out.stdout) };
}

async function uplinkAddress(host: string): Promise<string> {
  const r = await hostExec(host, ["ip", "-4", "-j", "addr", "show", "dev", "eth0"]);
  const local = JSON.parse(r.stdout)[0]?.addr_info?.[0]?.local;
  if (!local) throw new Error(`${host}: eth0 has no IPv4 address`);
  return local;
}

/** HostBridge create and delete on h1's eth0 through the engine path, `rounds` times; medians reported. */
export async function uplinkMoveRow(host: LabHost, stack: TestStack, rounds: number): Promise<Row> {
  const address = await uplinkAddress(host.name);
  const connection = connectionFor(host);
  const program = async () => {
    new HostBridge("bnhb", { connection, name: BRIDGE, uplink: "eth0", confirmTimeout: 15 });
    return {};
  };
  const creates: PingGap[] = [];
  const deletes: PingGap[] = [];
  const confirmed: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      creates.push((await pingedDuring(address, () => stack.up(program))).gap);
      confirmed.push(Number(findResource(stack.state, "bnhb")?.outputs.confirmedAfterMs));
      deletes.push((await pingedDuring(address, () => stack.destroy())).gap);
    }
  } finally {
    await stack.destroy();
  }
  const each = (g: PingGap[]) => g.map((x) => `${x.gapMs} ms/${x.lost} lost`).join(", ");
  return {
    what: "uplink move gap (HostBridge)",
    figure: `${msStr(median(creates.map((g) => g.gapMs)))} / ${msStr(median(deletes.map((g) => g.gapMs)))}`,
    target: "≤ 1 ping lost at 10 ms",
    verdict: verdict([...creates, ...deletes].every((g) => g.lost <= 1)),
    note:
      `longest time without a reply to a ping from upstream every ${INTERVAL_MS} ms at h1's eth0 address, ` +
      `create / delete, median of ${rounds} (create: ${each(creates)}; delete: ${each(deletes)}); ` +
      `create to confirmed over a new SSH connection: ${confirmed.map(msStr).join(", ")}`,
  };
}
