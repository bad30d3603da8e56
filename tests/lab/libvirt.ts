// Debian's libvirtd run inside a lab host, with only its network driver: the reference virtnet is measured
// against (tests/bench). Facts behind it (shared/notes/lab.md, "Libvirt on the same machine"):
// - Debian 12 ships only the monolithic libvirtd (no virtnetworkd). Installed with `--no-install-recommends
//   libvirt-daemon libvirt-clients` (NOT libvirt-daemon-system: no units, no polkit/dbus, no default network).
// - Plain libvirtd exits because its QEMU driver wants the libvirt-qemu user: LIBVIRT_DRIVER_DIR points at a
//   directory holding only a symlink to libvirt_driver_network.so.
// - A private libvirtd.conf (socket dir, no auth, 0700 sockets); clients connect with
//   `virsh -c 'network:///system?socket=<dir>/libvirt-sock'`.
// - Started through nsenter into all of the host's namespaces, libvirtd's bridges, iptables rules and dnsmasq
//   live in the host, its files go to the host's private /etc, /var and /run, and the host's own resolv.conf
//   (the lab's upstream) is the one its dnsmasq reads. When the host stops, the kernel kills it with the host.
// - Without dbus/firewalld it runs iptables (iptables-nft on Debian 12) directly, one process per rule.
import * as fs from "node:fs";
import { ExecOptions, ExecResult, hostExec, LabError } from "./lab";

/** Directory inside the host (its private tmpfs /run) for the socket, config, pid file and log. */
export const LIBVIRT_DIR = "/run/vnl-libvirt";
export const LIBVIRT_PACKAGES = ["libvirt-daemon", "libvirt-clients"];

export interface Libvirtd {
  host: string;
  dir: string;
  /** The URI virsh connects with (network driver over the private socket). */
  uri: string;
  /** libvirtd's pid as seen inside the host's pid namespace. */
  pid: number;
  /** Wall time from spawning libvirtd to the first answered virsh call. */
  startMs: number;
}

export interface LibvirtNetwork {
  name: string;
  bridge: string;
  /** Gateway address of the bridge, e.g. "10.111.0.1"; the subnet is a /24. */
  gateway: string;
  netmask?: string;
  /** DHCP range inside the subnet. */
  dhcp?: { start: string; end: string };
  mode?: "nat" | "route" | "isolated";
  /** libvirt's defaults are stp on, delay 0 (the kernel's minimum forward delay with STP is 2 s). */
  stp?: boolean;
  delay?: number;
  domain?: string;
  dnsHosts?: { ip: string; hostnames: string[] }[];
}

function findNetworkDriver(): string {
  const base = "/usr/lib";
  for (const d of fs.readdirSync(base)) {
    const p = `${base}/${d}/libvirt/connection-driver/libvirt_driver_network.so`;
    if (fs.existsSync(p)) return p;
  }
  throw new LabError(
    `libvirt's network driver is not installed (apt-get install --no-install-recommends ${LIBVIRT_PACKAGES.join(" ")})`,
  );
}

export function libvirtUri(dir = LIBVIRT_DIR): string {
  return `network:///system?socket=${dir}/libvirt-sock`;
}

function libvirtdConf(dir: string): string {
  return [
    "# virtnet lab: libvirtd with only the network driver (tests/lab/libvirt.ts)",
    `unix_sock_dir = "${dir}"`,
    'unix_sock_ro_perms = "0700"',
    'unix_sock_rw_perms = "0700"',
    'unix_sock_admin_perms = "0700"',
    'auth_unix_ro = "none"',
    'auth_unix_rw = "none"',
    "listen_tls = 0",
    "listen_tcp = 0",
    `log_outputs = "3:file:${dir}/libvirtd.log"`,
    "",
  ].join("\n");
}

async function must(host: string, argv: string[], opts: ExecOptions = {}): Promise<string> {
  const r = await hostExec(host, argv, opts);
  if (r.code !== 0)
    throw new LabError(
      `${host}: ${argv.join(" ").slice(0, 200)}: exit ${r.code}: ${(r.stderr || r.stdout).trim()}`,
    );
  return r.stdout;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs virsh against the host's libvirtd; `commands` go to one virsh process (joined with ";"). */
export function virsh(
  d: Pick<Libvirtd, "host" | "uri">,
  commands: string | string[],
  opts: ExecOptions = {},
) {
  const text = Array.isArray(commands) ? commands.join(" ; ") : commands;
  return hostExec(d.host, ["virsh", "-q", "-c", d.uri, text], { timeoutMs: 120_000, ...opts });
}

async function virshChecked(d: Pick<Libvirtd, "host" | "uri">, commands: string | string[]): Promise<string> {
  const r = await virsh(d, commands);
  if (r.code !== 0)
    throw new LabError(`${d.host}: virsh failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** Pid of the host's libvirtd from its pid file, when it is alive (host pid namespace numbers). */
async function runningPid(host: string, dir: string): Promise<number | undefined> {
  const r = await hostExec(host, [
    "sh",
    "-c",
    'p=$(cat "$1" 2>/dev/null) || exit 1; [ -n "$p" ] && [ "$(readlink /proc/$p/exe)" = /usr/sbin/libvirtd ] && echo "$p"',
    "sh",
    `${dir}/libvirtd.pid`,
  ]);
  const pid = Number(r.stdout.trim());
  return r.code === 0 && pid > 0 ? pid : undefined;
}

/** Starts libvirtd (network driver only) inside a lab host; reuses one already running there. */
export async function libvirtdStart(host: string, opts: { timeoutMs?: number } = {}): Promise<Libvirtd> {
  const dir = LIBVIRT_DIR;
  const uri = libvirtUri(dir);
  const existing = await runningPid(host, dir);
  if (existing) return { host, dir, uri, pid: existing, startMs: 0 };
  const driver = findNetworkDriver();
  const t0 = process.hrtime.bigint();
  await must(
    host,
    [
      "sh",
      "-c",
      'set -e; mkdir -p -m 0700 "$1/drivers"; ln -sf "$2" "$1/drivers/"; printf "%s" "$3" > "$1/libvirtd.conf"',
      "sh",
      dir,
      driver,
      libvirtdConf(dir),
    ],
    {},
  );
  await must(host, [
    "env",
    `LIBVIRT_DRIVER_DIR=${dir}/drivers`,
    "libvirtd",
    "-f",
    `${dir}/libvirtd.conf`,
    "-p",
    `${dir}/libvirtd.pid`,
    "-d",
  ]);
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  let last: ExecResult | undefined;
  while (Date.now() < deadline) {
    last = await virsh({ host, uri }, "net-list --all --name");
    if (last.code === 0) break;
    await sleep(20);
  }
  if (!last || last.code !== 0) {
    const log = (await hostExec(host, ["tail", "-n", "20", `${dir}/libvirtd.log`])).stdout;
    throw new LabError(
      `${host}: libvirtd did not answer: ${last?.stderr.trim()}\n--- libvirtd.log ---\n${log}`,
    );
  }
  const startMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const pid = await runningPid(host, dir);
  if (!pid) throw new LabError(`${host}: libvirtd answered but its pid file is missing`);
  return { host, dir, uri, pid, startMs };
}

/** Names of every network libvirtd knows (active or only defined). */
export async function libvirtNetworks(d: Pick<Libvirtd, "host" | "uri">): Promise<string[]> {
  return (await virshChecked(d, "net-list --all --name"))
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
}

/** Destroys and undefines every network, stops libvirtd and removes its directory. Safe when it is not
 * running (then only its directory goes). Returns what could not be cleaned. */
export async function libvirtdStop(host: string): Promise<string[]> {
  const dir = LIBVIRT_DIR;
  const uri = libvirtUri(dir);
  const left: string[] = [];
  const pid = await runningPid(host, dir);
  if (pid) {
    const d = { host, uri };
    for (const n of await libvirtNetworks(d)) {
      await virsh(d, [`net-destroy ${n}`]); // fails for an inactive one: fine
      const r = await virsh(d, [`net-undefine ${n}`]);
      if (r.code !== 0) left.push(`libvirt network ${n}: ${r.stderr.trim()}`);
    }
    await hostExec(host, ["kill", "-TERM", String(pid)]);
    for (let i = 0; i < 200 && (await runningPid(host, dir)); i++) await sleep(10);
    if (await runningPid(host, dir)) {
      await hostExec(host, ["kill", "-KILL", String(pid)]);
      await sleep(50);
      if (await runningPid(host, dir)) left.push(`libvirtd pid ${pid} survives`);
    }
  }
  // libvirtd's own state dirs, when the machine itself has none (the host's /etc and /var are overlays over
  // the machine's: removing a dir the machine has would only hide it).
  const made = ["/run/libvirt", "/var/lib/libvirt", "/etc/libvirt/qemu"].filter((p) => !fs.existsSync(p));
  await hostExec(host, ["rm", "-rf", "--", dir, ...made]);
  const fw = await hostExec(host, ["sh", "-c", REMOVE_LIBVIRT_CHAINS]);
  if (fw.code !== 0) left.push(`libvirt's iptables chains: ${fw.stderr.trim()}`);
  return left;
}

// libvirt keeps its top-level LIBVIRT_* chains (and the jumps to them) after its last network is gone. Remove
// them, keeping every other rule; when nothing else is left, drop the iptables-nft tables libvirt made.
const REMOVE_LIBVIRT_CHAINS = String.raw`set -u
for v in 4 6; do
  if [ $v = 4 ]; then save=iptables-save restore=iptables-restore fam=ip; else save=ip6tables-save restore=ip6tables-restore fam=ip6; fi
  command -v $save >/dev/null || continue
  all=$($save) || exit 1
  printf '%s
' "$all" | grep -q LIBVIRT_ || continue
  rest=$(printf '%s
' "$all" | grep -v LIBVIRT_)
  if printf '%s
' "$rest" | grep -qE '^-A |^:[^ ]+ (-|DROP)'; then
    printf '%s
' "$rest" | $restore || exit 1
  else
    for t in filter nat mangle; do nft delete table $fam $t 2>/dev/null; done
  fi
done
exit 0`;

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/'/g, "&apos;");
}

/** Network XML as `virsh net-define` takes it (libvirt's own defaults unless given). */
export function libvirtNetworkXml(n: LibvirtNetwork): string {
  const lines = ["<network>", `  <name>${esc(n.name)}</name>`];
  const mode = n.mode ?? "nat";
  if (mode !== "isolated") lines.push(`  <forward mode='${mode}'/>`);
  const stp = n.stp === undefined ? "" : ` stp='${n.stp ? "on" : "off"}'`;
  const delay = n.delay === undefined ? "" : ` delay='${n.delay}'`;
  lines.push(`  <bridge name='${esc(n.bridge)}'${stp}${delay}/>`);
  if (n.domain) lines.push(`  <domain name='${esc(n.domain)}' localOnly='yes'/>`);
  if (n.dnsHosts?.length) {
    lines.push("  <dns>");
    for (const h of n.dnsHosts)
      lines.push(
        `    <host ip='${esc(h.ip)}'>${h.hostnames.map((x) => `<hostname>${esc(x)}</hostname>`).join("")}</host>`,
      );
    lines.push("  </dns>");
  }
  lines.push(`  <ip address='${esc(n.gateway)}' netmask='${esc(n.netmask ?? "255.255.255.0")}'>`);
  if (n.dhcp) lines.push(`    <dhcp><range start='${esc(n.dhcp.start)}' end='${esc(n.dhcp.end)}'/></dhcp>`);
  lines.push("  </ip>", "</network>", "");
  return lines.join("\n");
}

/** Writes each network's XML into the host's libvirt dir; returns the paths (inside the host). */
export async function writeNetworkXmls(d: Libvirtd, nets: LibvirtNetwork[]): Promise<string[]> {
  const paths = nets.map((n) => `${d.dir}/xml/${n.name}.xml`);
  const script = [
    'mkdir -p "$1/xml"',
    // Braces: "$10" would be "${1}0".
    ...nets.map((_, i) => `printf '%s' "\${${i + 2}}" > "$1/xml/${nets[i].name}.xml"`),
  ].join("\n");
  await must(d.host, ["sh", "-c", script, "sh", d.dir, ...nets.map(libvirtNetworkXml)]);
  return paths;
}

/** `virsh net-define <xml>` + `net-start <name>` for each network, all in one virsh process. */
export async function defineAndStart(d: Libvirtd, nets: LibvirtNetwork[]): Promise<void> {
  const paths = await writeNetworkXmls(d, nets);
  await virshChecked(
    d,
    nets.flatMap((n, i) => [`net-define ${paths[i]}`, `net-start ${n.name}`]),
  );
}

/** `virsh net-destroy` + `net-undefine` for each network, all in one virsh process. */
export async function destroyAndUndefine(d: Libvirtd, names: string[]): Promise<void> {
  await virshChecked(
    d,
    names.flatMap((n) => [`net-destroy ${n}`, `net-undefine ${n}`]),
  );
}
