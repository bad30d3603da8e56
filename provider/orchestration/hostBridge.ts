// A HostBridge's operations on a host. The move and its reverse run detached on the host (ops/hostBridge.ts),
// which rolls them back by itself unless virtnet confirms over a NEW SSH connection, made through the host's
// new configuration, that the host is reachable and as planned.
import { randomBytes } from "node:crypto";
import { connect, connectFresh } from "../host";
import { ConnectionArgs, Host, HostCommandError } from "../host/host";
import { HostBridgeSpec } from "../model/hostBridge";
import {
  GENERATION_FILE,
  HostBridgePaths,
  hostBridgePaths,
  RESTORE_ENTRY,
  STATE_DIR,
  SYSTEMD_RUNTIME_DIR,
  SYSTEMD_UNIT_PATH,
  SYSTEMD_WANTS_LINK,
} from "../naming";
import { ObservedHostBridge, parseHostBridgeProbe, UplinkState } from "../observe/hostBridge";
import {
  HOST_BRIDGE_BOOT,
  HOST_BRIDGE_CONFIRM,
  HOST_BRIDGE_FORGET,
  HOST_BRIDGE_PROBE,
  HOST_BRIDGE_RUNNER,
  HOST_BRIDGE_START,
} from "../ops/hostBridge";
import {
  bootTexts,
  clientRunsOn,
  hostBridgeDrift,
  hostBridgeErrors,
  hostBridgeFiles,
  isOurs,
  movedAddressList,
  movedOf,
  tuningCommands,
  uplinkToSave,
  vlanFilteringChange,
} from "../plan/hostBridge";
import { dropReadAhead } from "./readAhead";

export interface HostBridgeResult {
  bridgeName: string;
  uplink: string;
  macAddress: string;
  /** The addresses moved to the bridge ("address/prefix"). */
  addresses: string[];
  /** The routes moved to the bridge, as `ip route` arguments. */
  routes: string[];
  /** Milliseconds from the start of the change to its confirmation (absent when nothing moved). */
  confirmedAfterMs?: number;
}

export interface HostBridgeStatus {
  exists: boolean;
  drift: string[];
  result?: HostBridgeResult;
}

/** A HostBridge change that did not stay: the host is as before (it rolled back by itself), and why. */
export class HostBridgeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HostBridgeError";
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function probe(host: Host, spec: HostBridgeSpec): Promise<ObservedHostBridge> {
  const p = hostBridgePaths(spec.name);
  const r = await host.runChecked(HOST_BRIDGE_PROBE, {
    args: [spec.uplink, spec.name, p.stateDir, p.runDir],
    step: "probe HostBridge",
  });
  return parseHostBridgeProbe(r.stdout);
}

function scope(host: Host, spec: HostBridgeSpec): string {
  return `host ${host.label}, HostBridge ${spec.name}`;
}

function resultOf(spec: HostBridgeSpec, saved: UplinkState): HostBridgeResult {
  return {
    bridgeName: spec.name,
    uplink: spec.uplink,
    macAddress: saved.mac,
    ...movedOf(saved),
  };
}

/** What the host must show through the new connection before virtnet confirms. */
type Verify = (o: ObservedHostBridge) => string[];

const moved =
  (spec: HostBridgeSpec, saved: UplinkState): Verify =>
  (o) => {
    const wrong: string[] = [];
    if (o.uplink?.master !== spec.name) wrong.push(`${spec.uplink} is not in ${spec.name}`);
    if (o.bridge?.mac !== saved.mac)
      wrong.push(`${spec.name} does not have ${spec.uplink}'s MAC ${saved.mac}`);
    const on = o.bridgeAddresses.map((a) => a.local);
    for (const a of movedAddressList(saved)) if (!on.includes(a)) wrong.push(`${a} is not on ${spec.name}`);
    if (saved.clients?.length && !clientRunsOn(spec.name, o))
      wrong.push(`no DHCP client (dhclient) runs on ${spec.name}`);
    if (!!o.bridge?.vlanFiltering !== !!spec.vlanFiltering)
      wrong.push(`${spec.name} has VLAN filtering ${o.bridge?.vlanFiltering ? "on" : "off"}`);
    if (spec.vlanFiltering && !o.uplinkTrunk) wrong.push(`${spec.uplink} is not a trunk`);
    return wrong;
  };

const restored =
  (spec: HostBridgeSpec, saved: UplinkState): Verify =>
  (o) => {
    const wrong: string[] = [];
    if (o.bridge) wrong.push(`${spec.name} is still there`);
    const on = (o.uplinkState?.addresses ?? []).map((a) => a.local);
    for (const a of movedAddressList(saved)) if (!on.includes(a)) wrong.push(`${a} is not on ${spec.uplink}`);
    if (saved.clients?.length && !clientRunsOn(spec.uplink, o))
      wrong.push(`no DHCP client (dhclient) runs on ${spec.uplink}`);
    return wrong;
  };

/** A step of a guarded change: an `ip -batch` file (run through `carry`, the script that carries the uplink's
 * DHCP client along with it, when there is one), then a `bridge -batch` file ("" or empty: none). */
interface Step {
  batch: string;
  carry?: string;
  vlans: string;
}

/** The move and the rollback of a HostBridge whose saved uplink state is `saved`. */
function steps(p: HostBridgePaths, saved: UplinkState): { move: Step; rollback: Step } {
  const carried = !!saved.clients?.length;
  return {
    move: { batch: p.move, vlans: p.moveVlans, ...(carried ? { carry: p.moveCarry } : {}) },
    rollback: { batch: p.rollback, vlans: "", ...(carried ? { carry: p.rollbackCarry } : {}) },
  };
}

/**
 * Starts `apply` detached on the host with `undo` armed, then confirms over new SSH connections until the
 * host's confirmTimeout. Throws a HostBridgeError (the host rolled back by itself) when it cannot confirm.
 */
async function guardedChange(
  conn: ConnectionArgs,
  host: Host,
  spec: HostBridgeSpec,
  p: HostBridgePaths,
  apply: Step,
  undo: Step,
  verify: Verify,
): Promise<number> {
  const token = randomBytes(8).toString("hex");
  const started = Date.now();
  const deadline = started + spec.confirmTimeout * 1000;
  let why = "no new SSH connection succeeded";
  try {
    await host.runChecked(HOST_BRIDGE_START, {
      args: [
        p.stateDir,
        p.runDir,
        String(spec.confirmTimeout),
        apply.batch,
        undo.batch,
        token,
        apply.carry ?? "",
        undo.carry ?? "",
        apply.vlans,
        undo.vlans,
      ],
      stdin: HOST_BRIDGE_RUNNER,
      step: "start the guarded change",
    });
  } catch (e) {
    if (e instanceof HostCommandError) throw e;
    // The connection went while starting: the change may run all the same; new connections find out.
    why = `the connection that started the change was lost (${(e as Error).message})`;
  }
  // Leave the host a second to take the confirmation before its own deadline.
  while (Date.now() < deadline - 1000) {
    let fresh;
    try {
      fresh = await connectFresh({
        ...conn,
        retries: 0,
        connectTimeoutMs: Math.max(1000, Math.min(5000, deadline - 1000 - Date.now())),
      });
      const status = (await fresh.run(`cat -- "$1" 2>/dev/null`, { args: [p.status] })).stdout.trim();
      // Our confirmation reached the host but its answer did not reach us (the connection went).
      if (status === `confirmed ${token}`) return Date.now() - started;
      if (status.startsWith(`rolled-back ${token}`) || status.startsWith(`failed ${token}`))
        throw new HostBridgeError(
          `${scope(host, spec)}: the host rolled back by itself${status.slice(status.indexOf(token) + token.length)}`,
        );
      if (status === `applied ${token}`) {
        const wrong = verify(await probe(fresh, spec));
        if (wrong.length) {
          why = `through the new connection the host is not as planned: ${wrong.join("; ")}`;
          break; // not confirmed: the host rolls back
        }
        await fresh.runChecked(HOST_BRIDGE_CONFIRM, { args: [p.runDir, token], step: "confirm" });
        for (let i = 0; i < 30; i++) {
          const s = (await fresh.run(`cat -- "$1" 2>/dev/null`, { args: [p.status] })).stdout.trim();
          if (s === `confirmed ${token}`) return Date.now() - started;
          await sleep(100);
        }
        why = "the host did not take the confirmation";
        break;
      }
    } catch (e) {
      if (e instanceof HostBridgeError) throw e;
      why = `a new SSH connection failed: ${(e as Error).message}`;
    } finally {
      await fresh?.close();
    }
    await sleep(300);
  }
  // Not confirmed: the host rolls back at its deadline. Report what it did, once it says so.
  await sleep(Math.max(0, deadline - Date.now()) + 1000);
  const status = await settledStatus(conn, host, p, token, Date.now() + 10_000);
  if (status === `confirmed ${token}`) return Date.now() - started;
  const outcome = status.startsWith(`rolled-back ${token}`)
    ? `the host rolled back by itself${status.slice(status.indexOf(token) + token.length)}`
    : `the host should have rolled back by itself after ${spec.confirmTimeout} s; its status reads "${status || "(unreachable)"}"`;
  throw new HostBridgeError(`${scope(host, spec)}: not confirmed (${why}); ${outcome}`);
}

async function readStatus(h: Host, p: HostBridgePaths): Promise<string> {
  return (await h.run(`cat -- "$1" 2>/dev/null`, { args: [p.status] })).stdout.trim();
}

/** The change's status once the host has ended it (rolled back, failed, confirmed), or the last read by `until`. */
async function settledStatus(
  conn: ConnectionArgs,
  host: Host,
  p: HostBridgePaths,
  token: string,
  until: number,
): Promise<string> {
  const ended = (s: string) => /^(rolled-back|failed|confirmed) /.test(s) && s.includes(token);
  let status = "";
  for (;;) {
    try {
      const h = await connectFresh({ ...conn, retries: 0, connectTimeoutMs: 3000 });
      status = await readStatus(h, p).finally(() => h.close());
    } catch {
      status = (await readStatus(host, p).catch(() => "")) || status;
    }
    if (ended(status) || Date.now() >= until) return status;
    await sleep(500);
  }
}

async function writeRecords(host: Host, spec: HostBridgeSpec, p: HostBridgePaths, saved: UplinkState) {
  await host.runChecked(`mkdir -p -m 0755 -- "$1" "$2"`, { args: [p.stateDir, p.runDir] });
  await host.writeFile(p.saved, JSON.stringify(saved) + "\n");
  const files = hostBridgeFiles(spec, saved, p);
  await host.writeFile(p.move, files.move);
  await host.writeFile(p.moveVlans, files.moveVlans);
  await host.writeFile(p.rollback, files.rollback);
  if (files.moveCarry) await host.writeFile(p.moveCarry, files.moveCarry);
  if (files.rollbackCarry) await host.writeFile(p.rollbackCarry, files.rollbackCarry);
}

async function writeBoot(host: Host, spec: HostBridgeSpec, p: HostBridgePaths, saved: UplinkState) {
  const boot = bootTexts();
  await host.writeFile(p.restore, hostBridgeFiles(spec, saved, p).restore);
  await host.runChecked(HOST_BRIDGE_BOOT, {
    args: [
      RESTORE_ENTRY,
      SYSTEMD_UNIT_PATH,
      SYSTEMD_WANTS_LINK,
      SYSTEMD_RUNTIME_DIR,
      boot.entry.replace(/\n$/, ""),
      boot.unit.replace(/\n$/, ""),
    ],
    step: "install the boot-time restore",
  });
}

/** Moves the uplink into the bridge under the guard, or tunes an existing HostBridge in place. */
export async function applyHostBridge(conn: ConnectionArgs, spec: HostBridgeSpec): Promise<HostBridgeResult> {
  const host = await connect(conn);
  dropReadAhead(host); // it changes the host outside a round and its token
  const p = hostBridgePaths(spec.name);
  const o = await probe(host, spec);
  if (isOurs(spec, o) && o.saved && o.uplink?.master === spec.name) {
    for (const c of tuningCommands(spec, o)) await host.runChecked(`ip "$@"`, { args: c.args, step: c.what });
    const vlans = vlanFilteringChange(spec, o);
    if (vlans) await changeVlanFiltering(conn, host, spec, p, o.saved, vlans);
    await writeRecords(host, spec, p, o.saved);
    await writeBoot(host, spec, p, o.saved);
    return resultOf(spec, o.saved);
  }
  const errors = hostBridgeErrors(spec, o);
  if (errors.length) throw new HostBridgeError(`${scope(host, spec)}: ${errors.join("; ")}`);
  const saved = uplinkToSave(spec, o);
  await writeRecords(host, spec, p, saved);
  const { move, rollback } = steps(p, saved);
  const ms = await guardedChange(conn, host, spec, p, move, rollback, moved(spec, saved)).catch(async (e) => {
    // The host is as before: so are virtnet's files.
    await forget(host, p).catch(() => undefined);
    throw e;
  });
  const after = await connectFresh(conn);
  try {
    await writeBoot(after, spec, p, saved);
  } finally {
    await after.close();
  }
  return { ...resultOf(spec, saved), confirmedAfterMs: ms };
}

/**
 * Turns vlan_filtering on or off on the bridge in place (the uplink stays enslaved, the bridge keeps its
 * ifindex) under the move's guard: it changes how the host's own frames cross the bridge, so it is confirmed
 * over a new connection or undone by the host itself.
 */
async function changeVlanFiltering(
  conn: ConnectionArgs,
  host: Host,
  spec: HostBridgeSpec,
  p: HostBridgePaths,
  saved: UplinkState,
  change: NonNullable<ReturnType<typeof vlanFilteringChange>>,
): Promise<void> {
  const lines = (l: string[]) => l.map((x) => x + "\n").join("");
  await host.runChecked(`mkdir -p -m 0755 -- "$1"`, { args: [p.runDir] });
  await host.writeFile(p.vlans.apply, lines(change.apply));
  await host.writeFile(p.vlans.applyVlans, lines(change.applyVlans));
  await host.writeFile(p.vlans.undo, lines(change.undo));
  await host.writeFile(p.vlans.undoVlans, lines(change.undoVlans));
  await guardedChange(
    conn,
    host,
    spec,
    p,
    { batch: p.vlans.apply, vlans: p.vlans.applyVlans },
    { batch: p.vlans.undo, vlans: p.vlans.undoVlans },
    moved(spec, saved),
  );
}

/** Puts the uplink back exactly as saved, under the same guard; then virtnet's files go. */
export async function deleteHostBridge(conn: ConnectionArgs, spec: HostBridgeSpec): Promise<void> {
  const host = await connect(conn);
  dropReadAhead(host); // it changes the host outside a round and its token
  const p = hostBridgePaths(spec.name);
  const o = await probe(host, spec);
  if (o.saved && isOurs(spec, o)) {
    // The boot-time restore goes with the files once the uplink is back (a reboot in between moves it again).
    const { move, rollback } = steps(p, o.saved);
    await guardedChange(conn, host, spec, p, rollback, move, restored(spec, o.saved));
  }
  const after = await connectFresh(conn);
  try {
    await forget(after, p);
  } finally {
    await after.close();
  }
}

export async function readHostBridge(conn: ConnectionArgs, spec: HostBridgeSpec): Promise<HostBridgeStatus> {
  const host = await connect(conn);
  const o = await probe(host, spec);
  if (!o.saved) return { exists: false, drift: [] };
  return { exists: true, drift: hostBridgeDrift(spec, o), result: resultOf(spec, o.saved) };
}

async function forget(host: Host, p: HostBridgePaths): Promise<void> {
  await host.runChecked(HOST_BRIDGE_FORGET, {
    args: [
      p.stateDir,
      p.runDir,
      RESTORE_ENTRY,
      SYSTEMD_UNIT_PATH,
      SYSTEMD_WANTS_LINK,
      STATE_DIR,
      GENERATION_FILE,
    ],
    step: "remove the HostBridge's files",
  });
}
