// A lab guest behind a TAP, as a VM is: the guest's namespace gets an "eth0" that is wired (tapwire.py) to a
// TAP on a lab host, such as a virtnet Port, instead of a veth on the bridge. The lab's guest functions
// (guestExec, guestDhcp, guestDel) work on it as on any guest; guestDel ends the wire with the namespace.
import { ChildProcess, spawn } from "node:child_process";
import * as path from "node:path";
import { repoRoot } from "../engine/engine";
import { guestAdd, guestNamespace, hostNamespace, labEnv, run } from "../lab/lab";

const wires = new Map<string, ChildProcess>();
process.on("exit", () => wires.forEach((w) => w.kill("SIGKILL")));

/**
 * Adds guest `guest` whose eth0 is wired to TAP `tap` on lab host `host`. The lab makes guests on a bridge:
 * `bridge` is any bridge of the host (the guest's veth goes at once); `mac` is eth0's MAC.
 */
export async function tapGuestAdd(
  guest: string,
  host: string,
  tap: string,
  bridge: string,
  opts: { mac?: string; multiQueue?: boolean } = {},
): Promise<void> {
  await guestAdd(guest, host, bridge);
  const ns = guestNamespace(guest);
  const must = async (argv: string[]) => {
    const r = await run(argv);
    if (r.code !== 0) throw new Error(`${argv.join(" ")}: exit ${r.code}: ${r.stderr}`);
  };
  await must(["ip", "-n", ns, "link", "del", "eth0"]); // the veth, both ends
  const argv = [
    "netns",
    "exec",
    hostNamespace(host),
    "python3",
    path.join(repoRoot(), "tests", "support", "tapwire.py"),
  ];
  argv.push(tap, `/run/netns/${ns}`, ...(opts.multiQueue ? ["multi_queue"] : []));
  const wire = spawn("ip", argv, { stdio: ["ignore", "pipe", "pipe"], env: labEnv() });
  wires.set(guest, wire);
  let err = "";
  wire.stderr.on("data", (d) => (err += d));
  await new Promise<void>((resolve, reject) => {
    wire.stdout.on("data", (d) => String(d).includes("ready") && resolve());
    wire.on("close", (code) => reject(new Error(`tapwire ${tap} -> ${guest} exited (${code}): ${err}`)));
  });
  await must(["ip", "-n", ns, "link", "set", "eth0", ...(opts.mac ? ["address", opts.mac] : []), "up"]);
}

/** Whether the wire of `guest` still runs (it ends when its TAP is deleted). */
export function tapGuestWired(guest: string): boolean {
  const w = wires.get(guest);
  return !!w && w.exitCode === null && w.signalCode === null;
}
