// A Host that counts the commands it runs, and the time they take, by step ("probe host", "apply").
import { Host, RunOptions, WriteFileOptions } from "../../provider/host/host";
import { LocalHost } from "../../provider/host/local";
import { hostCommand } from "../lab/lab";

export class CountingHost implements Host {
  readonly counts: Record<string, number> = {};
  /** Milliseconds spent in the host's commands, by step (each from spawn to exit). */
  readonly ms: Record<string, number> = {};
  /** Commands that have ended, by step. */
  readonly ended: Record<string, number> = {};
  constructor(private readonly inner: Host) {}
  get label() {
    return this.inner.label;
  }
  async run(script: string, opts?: RunOptions) {
    const k = opts?.step ?? "other";
    this.counts[k] = (this.counts[k] ?? 0) + 1;
    const t0 = process.hrtime.bigint();
    try {
      return await this.inner.run(script, opts);
    } finally {
      this.ms[k] = (this.ms[k] ?? 0) + Number(process.hrtime.bigint() - t0) / 1e6;
      this.ended[k] = (this.ended[k] ?? 0) + 1;
    }
  }
  runChecked(script: string, opts?: RunOptions) {
    return this.inner.runChecked(script, opts);
  }
  writeFile(path: string, content: string | Buffer, opts?: WriteFileOptions) {
    return this.inner.writeFile(path, content, opts);
  }
  readFile(path: string) {
    return this.inner.readFile(path);
  }
}

/** A lab host's commands run through nsenter (no SSH), counted. */
export function nsenterHost(host: string): CountingHost {
  return new CountingHost(new LocalHost({ wrap: hostCommand(host, []), label: `nsenter:${host}` }));
}
