// When virtnet itself is busy inside the provider process, for the bench: with VIRTNET_TIMING_FILE set, each
// span (an SSH dial, a round of changes, a shared read) is appended to that file as one JSON line when it
// ends. The bench tells virtnet's own time in the provider's window from the engine's and the program's, which
// it cannot see from the outside. Unset (always, outside the bench), nothing is written.
import { appendFileSync } from "node:fs";

/** One span: what, on which host, from and to (ms on the Unix epoch, sub-millisecond). */
export interface TimingSpan {
  span: "dial" | "round" | "read";
  host: string;
  start: number;
  end: number;
}

export const TIMING_FILE_ENV = "VIRTNET_TIMING_FILE";

/** Now on the Unix epoch, sub-millisecond: comparable across the bench's processes. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Runs `work` and records it as a span when timing is on (whether it succeeds or not). */
export async function timed<T>(span: TimingSpan["span"], host: string, work: () => Promise<T>): Promise<T> {
  const file = process.env[TIMING_FILE_ENV];
  if (!file) return work();
  const start = epochMs();
  try {
    return await work();
  } finally {
    const s: TimingSpan = { span, host, start, end: epochMs() };
    try {
      appendFileSync(file, JSON.stringify(s) + "\n");
    } catch {
      // A figure lost, never an operation: the work's own outcome stands.
    }
  }
}
