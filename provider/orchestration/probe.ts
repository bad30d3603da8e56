// Reads of a host: one probe for every change or read that arrives together.
import { Host, tail } from "../host/host";
import { networkPaths } from "../naming";
import { ObservedNetwork } from "../observe/observed";
import { parseMultiProbe, parseProbe } from "../observe/parse";
import { MULTI_PROBE_SCRIPT, probeArgs, PortProbe, PROBE_SCRIPT } from "../ops/probe";
import { withinDeadline } from "./deadline";
import { NetworkError } from "./errors";
import { HostQueues, MAX_BATCH } from "./queue";

/** What one probe looks at: a network (or a route's scope "route <name>") and its bridge. */
export interface ProbeTarget {
  name: string;
  bridge: string;
  /** Also ask the kernel how it reaches this address (a route's gateway); "" for none. */
  gateway: string;
  /**
   * The network whose bridge and directories the probe reads, when the target is not that network itself (a
   * Port's scope "port <tap>" with its network); `bridge` is then the one the change deletes ("").
   */
  network?: { name: string; bridge: string };
  /** A Port's TAP and owner, read too. */
  port?: PortProbe;
  /** A network's TFTP root: whether the host has that directory. */
  tftpRoot?: string;
}

/** The network a target's probe reads: its own, or the one it names. */
function networkOf(t: ProbeTarget): { name: string; bridge: string } {
  return t.network ?? { name: t.name, bridge: t.bridge };
}

// Route operations probe with a scope like "route x": its network paths are never used, only well-formed.
function safeDirName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_.-]/g, "_");
}

/** The probe's arguments for one target. */
export function targetArgs(t: ProbeTarget): string[] {
  const n = networkOf(t);
  return probeArgs(n.name, n.bridge, networkPaths(safeDirName(n.name)), t.gateway, t.port, t.tftpRoot);
}

/** One probe of the targets: the plain probe for one, the multi-network probe for several. */
export async function probeNow(
  host: Host,
  targets: ProbeTarget[],
  step = "probe host",
): Promise<ObservedNetwork[]> {
  const single = targets.length === 1;
  const r = await host.run(single ? PROBE_SCRIPT : MULTI_PROBE_SCRIPT, {
    args: targets.flatMap(targetArgs),
    step,
  });
  if (r.code !== 0)
    throw new NetworkError(host.label, targets[0].name, "probe host", `exit ${r.code}: ${tail(r.stderr)}`);
  const networks = targets.map(networkOf);
  return single
    ? [parseProbe(r.stdout, networks[0].name, networks[0].bridge)]
    : parseMultiProbe(r.stdout, networks);
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
  "read",
);

/**
 * What the host has for one network (or, with the scope "route <name>", for routes; with "port <tap>" and
 * `more.network`, for a Port), read-only.
 */
export function observe(
  host: Host,
  name: string,
  bridge: string,
  gateway = "",
  more: Pick<ProbeTarget, "network" | "port"> = {},
): Promise<ObservedNetwork> {
  const work = new Promise<ObservedNetwork>((resolve, reject) =>
    reads.add(host, { name, bridge, gateway, ...more, resolve, reject }),
  );
  return withinDeadline(host, name, "probe host", work);
}
