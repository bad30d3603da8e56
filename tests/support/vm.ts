// A real virtual machine for the tests: QEMU (TCG, no KVM needed) boots Debian's kernel with the busybox
// initramfs of scripts/vm-image.sh on an existing TAP device inside a network namespace. The guest's /init
// (scripts/vm-guest/init) gets a DHCP lease, pings its gateway and an upstream address, reports each step on
// the serial console as a "VM-..." line and powers off; bootVm reads those lines.
import { ChildProcess, execFile, spawn } from "node:child_process";
import * as path from "node:path";
import { promisify, stripVTControlCharacters } from "node:util";
import { repoRoot } from "../engine/engine";

export interface VmImage {
  kernel: string;
  initrd: string;
  /** The initramfs of a test host VM (tests/support/vmHost.ts). */
  hostInitrd: string;
}

const run = promisify(execFile);
let image: Promise<VmImage> | undefined;

/** Builds the VM's kernel and initramfs once (cached outside the repo across runs; see scripts/vm-image.sh). */
export function vmImage(): Promise<VmImage> {
  image ??= run("bash", [path.join(repoRoot(), "scripts", "vm-image.sh")], {
    timeout: 600_000,
  }).then(({ stdout }) => {
    const kv = Object.fromEntries(stdout.split("\n").map((l) => l.split("=", 2)));
    if (!kv.kernel || !kv.initrd || !kv.hostinitrd)
      throw new Error(`vm-image.sh printed no kernel/initrd/hostinitrd: ${stdout}`);
    return { kernel: kv.kernel, initrd: kv.initrd, hostInitrd: kv.hostinitrd };
  });
  image.catch(() => (image = undefined)); // a failed build is tried again by the next caller
  return image;
}

export interface VmBoot {
  /** Network namespace in which QEMU runs and where `tap` exists. */
  namespace: string;
  /** An existing persistent TAP device; QEMU attaches to it and leaves it in place. */
  tap: string;
  /** The guest NIC's MAC. */
  mac: string;
  /** Pinged by the guest after its gateway. */
  upstream?: string;
  /** DHCP discover attempts, 2 s apart (default 5). */
  dhcpTries?: number;
  /**
   * Runs once the guest has a lease and has done its pings, while it stays up (it answers at its lease, the
   * bridge has learned its MAC); the VM is stopped when this settles. Not called when there is no lease.
   */
  whileUp?: (vm: { lease: string; gateway: string | null }) => Promise<void>;
  /** Bound on the whole run, QEMU start to exit, `whileUp` included (default 120 s); QEMU is killed past it. */
  timeoutMs?: number;
}

export interface VmRun {
  /** The address the guest leased, null if it got none. */
  lease: string | null;
  /** The router of the lease. */
  gateway: string | null;
  pingGateway: boolean;
  /** null when no upstream was given. */
  pingUpstream: boolean | null;
  /** QEMU start to the guest's lease report, as seen from here. */
  bootToLeaseMs: number | null;
  /** QEMU start to exit. */
  totalMs: number;
  /** The serial console and QEMU's own messages, as received. */
  consoleLog: string;
}

const running = new Set<ChildProcess>();
// A test run that ends (or is interrupted) leaves no QEMU behind.
process.on("exit", () => {
  for (const p of running) p.kill("SIGKILL");
});

/** The guest's "VM-..." report lines, read from the console as it arrives. */
export class ConsoleReports {
  readonly lines: string[] = [];
  log = "";
  private pending = "";

  /** Adds console output; returns the report lines it completed. */
  add(text: string): string[] {
    this.log += text;
    const lines = (this.pending + text).split("\n");
    this.pending = lines.pop()!;
    // The firmware's escape sequences come without a newline: a report may follow them in a line.
    const found = lines.flatMap(
      (l) => /\bVM-[A-Z-]+(?: \S+)*/.exec(stripVTControlCharacters(l).replace(/\r/g, "")) ?? [],
    );
    this.lines.push(...found);
    return found;
  }

  has(tag: string): boolean {
    return this.lines.some((r) => r === `VM-${tag}` || r.startsWith(`VM-${tag} `));
  }

  /** The first word after the tag, null when the guest did not report it. */
  field(tag: string): string | null {
    return this.lines.find((r) => r.startsWith(`VM-${tag} `))?.split(" ")[1] ?? null;
  }

  tail(n: number): string {
    return this.log.replace(/\r/g, "").split("\n").slice(-n).join("\n");
  }
}

/**
 * Boots the VM and waits for it to power off (or for `whileUp`). Resolves with what the guest reported, also
 * when it got no lease or its pings failed; rejects (with the console's tail) when the VM never finished its
 * /init: QEMU failed, the kernel did not boot, or the timeout struck. QEMU is gone when this settles.
 */
export async function bootVm(o: VmBoot): Promise<VmRun> {
  const img = await vmImage();
  // QEMU would make a TAP of its own (gone when it exits) if the one named were missing.
  const link = await run("ip", ["netns", "exec", o.namespace, "ip", "-d", "link", "show", "dev", o.tap]);
  if (!/\btun type tap\b/.test(link.stdout)) throw new Error(`${o.namespace}: ${o.tap} is not a TAP device`);
  const append = ["console=ttyS0", "panic=1", `vm_dhcp_tries=${o.dhcpTries ?? 5}`];
  if (o.upstream) append.push(`vm_upstream=${o.upstream}`);
  if (o.whileUp) append.push("vm_hold=1");
  const argv = [
    ...["netns", "exec", o.namespace, "qemu-system-x86_64"],
    ...["-accel", "tcg", "-m", "128", "-nographic", "-no-reboot"],
    ...["-kernel", img.kernel, "-initrd", img.initrd, "-append", append.join(" ")],
    ...["-netdev", `tap,id=n0,ifname=${o.tap},script=no,downscript=no`],
    ...["-device", `virtio-net-pci,netdev=n0,mac=${o.mac}`],
  ];
  const timeoutMs = o.timeoutMs ?? 120_000;
  const t0 = performance.now();
  // `ip netns exec` execs QEMU: the child is QEMU itself.
  const qemu = spawn("ip", argv, { stdio: ["ignore", "pipe", "pipe"] });
  running.add(qemu);
  const reports = new ConsoleReports();
  let bootToLeaseMs: number | null = null;
  let held: Promise<void> | undefined;
  let heldError: unknown;
  const onData = (chunk: Buffer) => {
    for (const r of reports.add(chunk.toString("latin1"))) {
      if (r.startsWith("VM-LEASE ")) bootToLeaseMs = performance.now() - t0;
      if (r === "VM-READY" && o.whileUp)
        held = o
          .whileUp({ lease: reports.field("LEASE")!, gateway: reports.field("ROUTER") })
          .catch((e) => (heldError = e))
          .finally(() => qemu.kill("SIGTERM"));
    }
  };
  qemu.stdout.on("data", onData);
  qemu.stderr.on("data", onData);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    qemu.kill("SIGKILL");
  }, timeoutMs);
  let exit: { code: number | null; signal: string | null };
  try {
    exit = await new Promise((resolve, reject) => {
      qemu.on("error", reject);
      qemu.on("close", (code, signal) => resolve({ code, signal }));
    });
    await held;
  } finally {
    clearTimeout(timer);
    if (qemu.exitCode === null && qemu.signalCode === null) qemu.kill("SIGKILL");
    running.delete(qemu);
  }
  const totalMs = performance.now() - t0;
  if (heldError) throw heldError;
  if (timedOut || !(reports.has("DONE") || (held && reports.has("READY")))) {
    const why = timedOut ? `timed out after ${timeoutMs} ms` : `QEMU exited (${exit.code ?? exit.signal})`;
    throw new Error(
      `VM on ${o.namespace}/${o.tap}: /init did not finish: ${why}\n--- console tail ---\n${reports.tail(30)}`,
    );
  }
  return {
    lease: reports.field("LEASE"),
    gateway: reports.field("ROUTER"),
    pingGateway: reports.lines.some((r) => r.startsWith("VM-PING-OK gateway ")),
    pingUpstream: o.upstream ? reports.lines.some((r) => r.startsWith("VM-PING-OK upstream ")) : null,
    bootToLeaseMs,
    totalMs,
    consoleLog: reports.log,
  };
}

/** Kills every VM still running (for a test's cleanup after a failure or a timeout) and waits for them. */
export async function killVms(): Promise<void> {
  await Promise.all(
    [...running].map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) return resolve();
          p.once("close", () => resolve());
          p.kill("SIGKILL");
        }),
    ),
  );
}
