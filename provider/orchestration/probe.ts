// Reads of a host: one probe for every change or read that arrives together.
import { Host, tail } from "../host/host";
import { networkPaths } from "../naming";
import { ObservedNetwork } from "../observe/observed";
import { parseMultiProbe, parseProbe } from "../observe/parse";
import { MULTI_PROBE_SCRIPT, probeArgs, PROBE_SCRIPT } from "../ops/probe";
import { NetworkError } from "./errors";
import { HostQueues, MAX_BATCH } from "./queue";

/** What one probe looks at: a network (or a route's scope "route <name>") and its bridge. */
export interface ProbeTarget {
  name: string;
  bridge: string;
  /** Also ask the kernel how it reaches this address (a route's gateway); "" for none. */
  gateway: string;
}

// Route operations probe with a scope like "route x": its network paths are never used, only well-formed.
function safeDirName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_.-]/g, "_");
}

/** The probe's arguments for one target. */
export function targetArgs(t: ProbeTarget): string[] {
  return probeArgs(t.name, t.bridge, networkPaths(safeDirName(t.name)), t.gateway);
}

/** One probe of the targets: the plain probe for one, the multi-network probe for several. */
export async function probeNow(host: Host, targets: ProbeTarget[]): Promise<ObservedNetwork[]> {
  const single = targets.length === 1;
  const r = await host.run(single ? PROBE_SCRIPT : MULTI_PROBE_SCRIPT, {
    args: targets.flatMap(targetArgs),
    step: "probe host",
  });
  if (r.code !== 0)
    throw new NetworkError(host.label, targets[0].name, "probe host", `exit ${r.code}: ${tail(r.stderr)}`);
  return single
    ? [parseProbe(r.stdout, targets[0].name, targets[0].bridge)]
    : parseMultiProbe(r.stdout, targets);
}

/** A failure of a probe shared by several changes or reads, as each of them reports it. */
export function errorFor(host: Host, e: unknown, name: string): unknown {
  return e instanceof NetworkError && e.network !== name
    ? new NetworkError(host.label, name, e.step, e.detail)
    : e;
}

interface Read extends ProbeTarget {
  resolve: (o: ObservedNetwork) => void;
  reject: (e: unknown) => void;
}

// Reads (refresh, import) of one host that arrive together share one probe, as changes do (round.ts).
const reads = new HostQueues<Read>(
  async (host, waiting) => {
    const batch = waiting.splice(0, MAX_BATCH);
    try {
      const observed = await probeNow(host, batch);
      batch.forEach((t, i) => t.resolve(observed[i]));
    } catch (e) {
      for (const t of batch) t.reject(errorFor(host, e, t.name));
    }
  },
  (read, e) => read.reject(e),
);

/** What the host has for one network (or, with the scope "route <name>", for routes), read-only. */
export function observe(host: Host, name: string, bridge: string, gateway = ""): Promise<ObservedNetwork> {
  return new Promise<ObservedNetwork>((resolve, reject) =>
    reads.add(host, { name, bridge, gateway, resolve, reject }),
  );
}
