// One queue per host for what this process asks of it: what arrives while the queue runs waits, and is
// served in batches once arrivals settle, so that what the engine issues together shares one probe (and, for
// changes, one script).
import { Host } from "../host/host";
import { timed, TimingSpan } from "../timing";

/** At most this many changes or reads per batch (200 creates + ranges on one host: 32 -> 10.9-11.5 s,
 * 128 -> 9.4-9.7 s, 256 no better). */
export const MAX_BATCH = 128;

// What the engine issues together reaches the provider over tens of milliseconds (20 deletes: ~90 ms). A batch
// starts once nothing new has come for SETTLE_MS, MAX_SETTLE_MS at most.
const SETTLE_MS = 8;
const MAX_SETTLE_MS = 60;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Queue<T> {
  waiting: T[];
  running: boolean;
  lastArrival: number;
}

async function arrivalsSettled(q: { lastArrival: number }): Promise<void> {
  const start = Date.now();
  for (;;) {
    const quiet = Date.now() - q.lastArrival;
    if (quiet >= SETTLE_MS || Date.now() - start >= MAX_SETTLE_MS) return;
    await sleep(SETTLE_MS - quiet);
  }
}

export class HostQueues<T> {
  private readonly queues = new Map<string, Queue<T>>();

  /**
   * `serve` takes what it serves out of `waiting` and settles it; `fail` settles whatever is left waiting
   * when `serve` throws (not expected: a waiting item must never wait forever).
   */
  constructor(
    private readonly serve: (host: Host, waiting: T[]) => Promise<void>,
    private readonly fail: (item: T, error: unknown) => void,
    /** How each batch, its wait for arrivals included, is named in the bench's timing (../timing.ts). */
    private readonly span: TimingSpan["span"],
  ) {}

  /** Nothing of the host's is waiting or being served. */
  isIdle(host: Host): boolean {
    return !this.queues.has(host.label);
  }

  add(host: Host, item: T): void {
    let q = this.queues.get(host.label);
    if (!q) this.queues.set(host.label, (q = { waiting: [], running: false, lastArrival: 0 }));
    q.waiting.push(item);
    q.lastArrival = Date.now();
    if (!q.running) {
      q.running = true;
      const queue = q;
      setImmediate(() => void this.drain(host, queue));
    }
  }

  private async drain(host: Host, q: Queue<T>): Promise<void> {
    try {
      while (q.waiting.length) {
        try {
          await timed(this.span, host.label, async () => {
            await arrivalsSettled(q);
            await this.serve(host, q.waiting);
          });
        } catch (e) {
          for (const item of q.waiting.splice(0)) this.fail(item, e);
        }
      }
    } finally {
      q.running = false;
      if (this.queues.get(host.label) === q && !q.waiting.length) this.queues.delete(host.label);
    }
  }
}
