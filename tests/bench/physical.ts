// The physical limit: what the kernel and dnsmasq alone take for the bench's networks on one lab host, with
// none of virtnet's own work (no probe, no lock, no state, no undo, no checks): the bridges of all networks in
// one `ip -batch`, the firewall rules of all in one `nft -f`, their dnsmasqs started side by side. The lines
// are virtnet's own renderers' (ip.ts, nftables.ts, dnsmasq.ts), so the kernel and dnsmasq do the same work as
// under virtnet. Destroy: the dnsmasqs signalled, the bridges in one `ip link del group` meanwhile (each bridge
// waits for the kernel's RCU barrier; in one group deletion they share the grace periods), the rules in one
// `nft` command, then the wait until the dnsmasqs and the bridges are gone. Runs inside the host through
// nsenter, timed by bash itself.
import { NetworkPaths, networkPaths, RUN_DIR, STATE_DIR } from "../../provider/naming";
import { renderBridgeCreate } from "../../provider/render/ip";
import { renderDnsmasqConf, renderHostsFile } from "../../provider/render/dnsmasq";
import { renderNftables } from "../../provider/render/nftables";
import { hostExec } from "../lab/lab";
import { specsOf } from "./floor";
import { BenchNet } from "./stacks";

/** Scratch directory in the host's own /run (a tmpfs of the host): nothing of virtnet's is touched. */
const DIR = "/run/vnbench-physical";
/** The rules go in a table of their own, so that virtnet's table is never touched. */
const TABLE = "vnbenchphys";
/** The link group the destroy deletes at once; nothing else on a lab host uses it. */
const GROUP = 4242;

export interface PhysicalResult {
  /** Wall time of the three steps together, and of each (destroy: each one's end, from the start: they overlap). */
  ms: number;
  steps: { bridges: number; nft: number; dnsmasq: number };
}

/** virtnet's paths of a network, moved from its state and run directories into the scratch directory. */
function pathsOf(name: string): NetworkPaths {
  const moved = Object.entries(networkPaths(name)).map(([k, v]) => [
    k,
    v.replace(`${STATE_DIR}/networks/`, `${DIR}/`).replace(`${RUN_DIR}/networks/`, `${DIR}/`),
  ]);
  return Object.fromEntries(moved) as NetworkPaths;
}

async function bash(host: string, script: string, args: string[] = []): Promise<string> {
  const r = await hostExec(host, ["/bin/bash", "-c", script, "physical", ...args], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`${host}: physical limit script failed (exit ${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** Marks of bash's $EPOCHREALTIME (seconds, with microseconds): the whole time and each step's, in ms. */
function marks(out: string): { ms: number; parts: number[] } {
  const t = out.trim().split(/\s+/).map(Number);
  return { ms: (t[t.length - 1] - t[0]) * 1000, parts: t.slice(1).map((x, i) => (x - t[i]) * 1000) };
}

/** Writes every file the steps read (not timed), then runs the create steps. */
export async function physicalCreate(host: string, nets: BenchNet[]): Promise<PhysicalResult> {
  const specs = nets.map((n) => specsOf(n));
  const files: [string, string][] = [
    [`${DIR}/bridges.batch`, specs.flatMap(({ spec }) => renderBridgeCreate(spec)).join("\n") + "\n"],
    [
      `${DIR}/rules.nft`,
      specs
        .map(({ spec }) => renderNftables(spec)!.replace(/^table inet virtnet /, `table inet ${TABLE} `))
        .join(""),
    ],
    [
      `${DIR}/bridges.group`,
      specs.map(({ spec }) => `link set dev ${spec.bridge.name} group ${GROUP}`).join("\n") + "\n",
    ],
  ];
  for (const { spec, range } of specs) {
    const p = pathsOf(spec.name);
    files.push([p.dnsmasqConf, renderDnsmasqConf(spec, p, [range])], [p.addnHosts, renderHostsFile(spec)]);
    files.push([p.dhcpHosts, ""]);
  }
  // Arguments: pairs of path and content.
  await bash(
    host,
    `rm -rf ${DIR}; set -e; while [ $# -gt 0 ]; do mkdir -p "$(dirname "$1")"; printf '%s' "$2" > "$1"; shift 2; done`,
    files.flat(),
  );
  const m = marks(
    await bash(
      host,
      `set -e; cd ${DIR}
t0=$EPOCHREALTIME; ip -batch bridges.batch
t1=$EPOCHREALTIME; nft -f rules.nft
t2=$EPOCHREALTIME; pids=""
for c in */dnsmasq.conf; do dnsmasq --conf-file="${DIR}/$c" & pids="$pids $!"; done
# Each dnsmasq's first process exits once its daemon serves (or failed to start).
for p in $pids; do wait "$p"; done
t3=$EPOCHREALTIME; echo "$t0 $t1 $t2 $t3"`,
    ),
  );
  const [bridges, nft, dnsmasq] = m.parts;
  return { ms: m.ms, steps: { bridges, nft, dnsmasq } };
}

/** The destroy: the dnsmasqs signalled, the bridges deleted as one group in the background, the table deleted,
 * then until the dnsmasqs are gone and the bridges' deletion has returned. Each step's time is from the start
 * to its own end (they overlap). The scratch directory goes after (not timed). */
export async function physicalDestroy(host: string): Promise<PhysicalResult> {
  const out = await bash(
    host,
    `set -e; cd ${DIR}
gone() { local s; s=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 0; [ "$s" = Z ]; }
t0=$EPOCHREALTIME; pids=$(cat */dnsmasq.pid); kill $pids
{ ip -batch bridges.group; ip link del group ${GROUP}; echo $EPOCHREALTIME > bridges.end; } &
nft delete table inet ${TABLE}; tn=$EPOCHREALTIME
for p in $pids; do while ! gone "$p"; do sleep 0.001; done; done
td=$EPOCHREALTIME; wait $!; t1=$EPOCHREALTIME
echo "$t0 $tn $td $(cat bridges.end) $t1"; cd /; rm -rf ${DIR}`,
  );
  const t = out.trim().split(/\s+/).map(Number);
  const since = (x: number) => (x - t[0]) * 1000;
  return { ms: since(t[4]), steps: { nft: since(t[1]), dnsmasq: since(t[2]), bridges: since(t[3]) } };
}

/** Whatever a failed run left (dnsmasqs, table, bridges, files); quiet when there is nothing. */
export async function physicalCleanup(host: string, nets: BenchNet[]): Promise<void> {
  const bridges = nets.map((n) => specsOf(n).spec.bridge.name);
  await hostExec(host, [
    "/bin/bash",
    "-c",
    `for f in ${DIR}/*/dnsmasq.pid; do [ -f "$f" ] && kill $(cat "$f"); done 2>/dev/null
nft delete table inet ${TABLE} 2>/dev/null; for b in "$@"; do ip link del "$b" 2>/dev/null; done; rm -rf ${DIR}; :`,
    "cleanup",
    ...bridges,
  ]);
}
