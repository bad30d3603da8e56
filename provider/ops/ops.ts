// The vocabulary of host operations. Each op returns its shell text, the text that undoes it, and what it
// touches (action.ts); planners state intent by calling these, and never write shell text of their own. The
// shell functions called here (write_file, make_dir, dnsmasq_start, ...) are defined in helpers.ts.
import { firewalldZoneCommand } from "../render/firewalld";
import { IpFamily } from "../render/firewallIntent";
import { ipv6OffText } from "../render/ip";
import { restoreCommand } from "../render/iptables";
import { GENERATION_FILE, isNetworkPath, STATE_DIR } from "../naming";
import { Action } from "./action";
import { DIR_MODE } from "./helpers";
import { sh } from "./shell";

const FILE_MODE = "0644";

/** Host-wide unless the path is in one network's own directories. */
const sharedIf = (...paths: string[]) => (paths.some((p) => !isNetworkPath(p)) ? { shared: true } : {});
const hostTeardown = { shared: true, hostTeardown: true };

// ---------------------------------------------------------------------------------------------------------
// Files and directories

export function makeDir(path: string): Action {
  return {
    name: `create directory ${path}`,
    run: sh("make_dir", DIR_MODE, path),
    undo: sh("rmdir", path),
    makesDir: path,
    ...sharedIf(path),
  };
}

export interface WriteOptions {
  mode?: string;
  /** The running dnsmasq rereads the file on SIGHUP: the undo signals it after putting the file back. */
  dnsmasqReads?: boolean;
  /** A unit file of the running systemd: the undo has it reread the units after putting the file back. */
  systemdReads?: boolean;
  /**
   * Nothing reads the file while the round runs (its dnsmasq is stopped, or starts after it): replaced in place,
   * without a temporary name and one `mv` process.
   */
  unread?: boolean;
}

/** Writes a file whole (atomically where it replaces one); the undo puts `previous` back, or removes it. */
export function writeFile(
  path: string,
  content: string,
  previous: string | undefined,
  opts: WriteOptions = {},
): Action {
  const mode = opts.mode ?? FILE_MODE;
  const restore = previous === undefined ? sh("rm", "-f", path) : sh("write_file", path, mode, previous);
  return {
    name: `write ${path}`,
    run: sh(opts.unread ? "write_file_unread" : "write_file", path, mode, content),
    undo:
      restore +
      (opts.dnsmasqReads ? " && dnsmasq_hup" : "") +
      (opts.systemdReads ? ` && ${RELOAD_UNITS}` : ""),
    ...sharedIf(path),
  };
}

const RELOAD_UNITS = sh("systemctl", "daemon-reload");

/**
 * The running systemd rereads its unit files (after virtnet wrote or removed one), so that what it has loaded
 * is what is on disk. `teardown`: after a host teardown's removals, at the round's end.
 */
export function reloadSystemdUnits(teardown = false): Action {
  return {
    name: "reload systemd's units",
    run: RELOAD_UNITS,
    ...(teardown ? hostTeardown : { shared: true }),
  };
}

/** Removes a file virtnet wrote; the undo writes it back as it was. */
export function removeFile(path: string, previous: string): Action {
  return {
    name: `remove ${path}`,
    run: sh("rm", "-f", path),
    undo: sh("write_file", path, FILE_MODE, previous),
    removes: path,
    ...sharedIf(path),
  };
}

/**
 * Removes files for good (a delete: no undo). Host-wide ones (the boot entry, the unit) go only with the last
 * of what needs them: their removal is host teardown.
 */
export function discardFiles(name: string, ...paths: string[]): Action {
  return { name, run: sh("rm", "-f", ...paths), ...(sharedIf(...paths).shared ? hostTeardown : {}) };
}

/** Removes one network's own directories with everything in them (names are validated: never "" or ".."). */
export function removeTrees(name: string, dirs: string[]): Action {
  return { name, run: `rm -rf -- ${sh(...dirs)}`, removesTrees: dirs };
}

/**
 * A directory that plans of one round may each need (a network's ports): made unless it is there; the undo
 * removes it only if this script made it.
 */
export function ensureDir(path: string): Action {
  return {
    name: `create directory ${path}`,
    run: `[ -d ${sh(path)} ] || make_dir ${DIR_MODE} ${sh(path)}`,
    undo: `case "$vn_made" in *${sh(`|${path}|`)}*) rmdir ${sh(path)};; esac`,
    ...sharedIf(path),
  };
}

/**
 * Removes virtnet's directories that are empty; a directory something is still in stays. Host-wide ones go
 * only with the last of what needs them: their removal is host teardown.
 */
export function removeEmptyDirs(name: string, dirs: string[]): Action {
  return {
    name,
    run: `rmdir ${sh(...dirs)} 2>/dev/null; :`,
    ...(sharedIf(...dirs).shared ? hostTeardown : {}),
  };
}

/** The last teardown on a host: virtnet's state directory goes, with its generation token. */
export function removeStateDir(): Action {
  return {
    name: `remove directory ${STATE_DIR}`,
    run: `rm -f -- ${sh(GENERATION_FILE)}; rmdir ${sh(STATE_DIR)} 2>/dev/null; :`,
    ...hostTeardown,
  };
}

export function symlink(name: string, target: string, link: string): Action {
  return { name, run: sh("ln", "-sfn", target, link), undo: sh("rm", "-f", link), ...sharedIf(link) };
}

// ---------------------------------------------------------------------------------------------------------
// Links, addresses, routes

/** One `ip` command; `undoArgs` are the arguments of the one that takes it back. */
export function ip(name: string, args: string[], undoArgs?: string[]): Action {
  const a: Action = { name, run: sh("ip", ...args) };
  if (undoArgs) a.undo = sh("ip", ...undoArgs);
  return a;
}

/** Several `ip` commands in one process (`ip -batch`). */
export function ipBatch(name: string, lines: string[], undoArgs: string[]): Action {
  return { name, run: `printf '%s\\n' ${sh(...lines)} | ip -batch -`, undo: sh("ip", ...undoArgs) };
}

/** Makes a link that needs nothing else (a network's bridge) with `ip -batch` lines; the undo deletes it. */
export function linkCreate(name: string, link: string, lines: string[]): Action {
  return { ...ipBatch(name, lines, ["link", "del", "dev", link]), createsLink: { link, lines } };
}

/** Deletes a link; `remakeLines` (`ip -batch` lines) make it again as it was, as the undo. */
export function linkDelete(name: string, link: string, remakeLines?: string[]): Action {
  const a: Action = { name, run: sh("ip", "link", "del", "dev", link) };
  if (remakeLines) a.undo = `printf '%s\\n' ${sh(...remakeLines)} | ip -batch -`;
  return a;
}

/** Several `bridge` commands in one process (`bridge -batch`): a port's VLANs; `undoLines` take them back. */
export function bridgeBatch(name: string, lines: string[], undoLines?: string[]): Action {
  const batch = (l: string[]) => `printf '%s\\n' ${sh(...l)} | bridge -batch -`;
  const a: Action = { name, run: batch(lines) };
  if (undoLines?.length) a.undo = batch(undoLines);
  return a;
}

/**
 * A bridge the round deletes, with the round's other bridges, from its start (the deletion itself is the
 * round's: this step only names the bridge). bridgeDeleted checks it at the round's end.
 */
export function bridgeDelete(bridge: string): Action {
  return { name: "delete bridge", run: ":", deletesBridge: bridge };
}

/** The bridge is gone once the round's deletion is done, or is deleted alone now (with the kernel's reason). */
export function bridgeDeleted(bridge: string): Action {
  return { name: "bridge deleted", run: `bridge_deleted ${sh(bridge)}`, atRoundEnd: true };
}

/** Turns IPv6 off on an interface virtnet just made (it goes with the interface: no undo of its own). */
export function ipv6Off(name: string, ifname: string): Action {
  return { name, run: ipv6OffText(ifname) };
}

/** One `bridge fdb` command: a VXLAN device's forwarding database; `undoArgs` are the ones that take it back. */
export function bridgeFdb(name: string, args: string[], undoArgs?: string[]): Action {
  const a: Action = { name, run: sh("bridge", "fdb", ...args) };
  if (undoArgs) a.undo = sh("bridge", "fdb", ...undoArgs);
  return a;
}

/** Deletes an entry the kernel learned: it may age out before the step runs, which is no failure. */
export function bridgeFdbForget(name: string, args: string[]): Action {
  return { name, run: `${sh("bridge", "fdb", "del", ...args)} 2>/dev/null; :` };
}

// ---------------------------------------------------------------------------------------------------------
// Firewalls

const nftRun = (script: string) => `printf '%s' ${sh(script)} | nft -f -`;

/** One nft transaction; the undo is the transaction that puts back what it replaced. */
export function nftApply(name: string, script: string, putBack: string): Action {
  return { name, run: nftRun(script), undo: nftRun(putBack), nft: script };
}

export function nftAddTable(family: string, table: string): Action {
  return {
    name: `create nft table ${family} ${table}`,
    run: sh("nft", "add", "table", family, table),
    undo: sh("nft", "delete", "table", family, table),
    shared: true,
  };
}

/** virtnet's shared table, with the last network that has chains in it. */
export function nftDeleteTable(family: string, table: string): Action {
  return {
    name: `remove nft table ${family} ${table}`,
    run: sh("nft", "delete", "table", family, table),
    ...hostTeardown,
  };
}

/** One side of an iptables-restore step: its input (none: nothing to restore), then an nft table to delete. */
export interface IptablesChange {
  input: string | null;
  /** An iptables-nft table ("ip filter") to delete after, when virtnet made it and it is empty now. */
  dropTable?: string;
}

const iptablesText = (family: IpFamily, c: IptablesChange) =>
  `${c.input ? restoreCommand(family, c.input) : ":"}${c.dropTable ? ` && ${sh("nft", "delete", "table", ...c.dropTable.split(" "))}` : ""}`;

/** One iptables-restore transaction (--noflush) in chains every network shares. */
export function iptablesRestore(
  name: string,
  family: IpFamily,
  change: IptablesChange,
  undo?: IptablesChange,
): Action {
  const a: Action = { name, run: iptablesText(family, change), shared: true };
  if (undo) a.undo = iptablesText(family, undo);
  return a;
}

/** The bridge into, out of or between firewalld zones (runtime configuration). */
export function firewalldZone(
  name: string,
  bridge: string,
  change: { op: "add" | "change" | "remove"; zone: string },
  undo?: { op: "add" | "change" | "remove"; zone: string },
): Action {
  const a: Action = { name, run: sh(...firewalldZoneCommand(change.op, change.zone, bridge)), shared: true };
  if (undo) a.undo = sh(...firewalldZoneCommand(undo.op, undo.zone, bridge));
  return a;
}

// ---------------------------------------------------------------------------------------------------------
// Kernel settings

const setting = (key: string, value: number) => {
  if (!/^[a-z0-9_.]+$/.test(key) || !Number.isInteger(value)) throw new Error(`bad sysctl ${key}=${value}`);
  return `sysctl -qw ${key}=${value}`;
};

/** What records virtnet's change of a setting: an empty marker file, or a file with content. */
export type SettingRecord = { marker: string } | { file: Action };

/** Sets a kernel setting and records that virtnet did; the undo puts `was` back and the record away. */
export function sysctl(name: string, key: string, value: number, was: number, record: SettingRecord): Action {
  const [run, undo] =
    "marker" in record
      ? [`: > ${sh(record.marker)}`, `rm -f ${sh(record.marker)}`]
      : [record.file.run, record.file.undo];
  return {
    name,
    run: `${setting(key, value)} && ${run}`,
    undo: `${setting(key, was)}; ${undo}`,
    shared: true,
  };
}

/** Puts a setting back (unless `value` is undefined: then only the record goes) with the last network. */
export function sysctlRestore(name: string, key: string, value: number | undefined, record: string): Action {
  const back = value === undefined ? "" : `${setting(key, value)} && `;
  return { name, run: `${back}rm -f ${sh(record)}`, ...hostTeardown };
}

// ---------------------------------------------------------------------------------------------------------
// dnsmasq ($conf and $pidfile are the probe's variables of the step's network)

/** The dnsmasq the probe saw (pid and start time), so a stop or reload reaches that process only. */
export interface ProbedProcess {
  pid: number;
  start?: string;
}

const probed = (p?: ProbedProcess) => (p?.start ? sh(String(p.pid), p.start) : "");

export function dnsmasqStart(): Action {
  return { name: "start dnsmasq", run: "dnsmasq_start", undo: "dnsmasq_stop", background: true };
}

/**
 * Stops the network's dnsmasq (the one the probe saw, if it is still that process); `undo`: start it again.
 * Without an undo (a delete) the round waits for it to be gone at its end, with its other deletes' stops.
 */
export function dnsmasqStop(p: ProbedProcess | undefined, undo = false): Action {
  if (!undo) return { name: "stop dnsmasq", run: `dnsmasq_stop_late ${probed(p)}` };
  return { name: "stop dnsmasq", run: `dnsmasq_stop ${probed(p)}`, undo: "dnsmasq_start" };
}

/** A restart's stop: only signals it; the start that follows waits for it to be gone. */
export function dnsmasqStopForRestart(p: ProbedProcess | undefined): Action {
  return { name: "stop dnsmasq", run: `dnsmasq_stop_begin ${probed(p)}`, undo: "dnsmasq_start" };
}

/** dnsmasq rereads its hosts files: leases and pid stay. */
export function dnsmasqHup(p: ProbedProcess | undefined): Action {
  return { name: "reload dnsmasq", run: `dnsmasq_hup ${probed(p)}` };
}
