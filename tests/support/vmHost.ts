// Test hosts in VMs, for what the machine's own kernel cannot do (it has no VLAN-aware bridges and no 802.1Q):
// QEMU (TCG) boots Debian's kernel with the host initramfs of scripts/vm-image.sh (scripts/vm-host/), whose
// root is the machine's root over 9p, read-only, so the host runs the same iproute2, dnsmasq, sshd and
// python3. virtnet reaches its sshd over QEMU's user-mode network (restrict=on: the VM reaches nothing but
// the forwarded SSH port on 127.0.0.1). Two hosts can share a trunk segment: each one's eth1, joined by a
// QEMU socket netdev on 127.0.0.1. Guests are namespaces inside a host, on a bridge (a veth) or behind a TAP
// (tests/support/tapwire.py, as a VM's NIC is).
import { ChildProcess, execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { quote } from "shell-quote";
import { promisify } from "node:util";
import { repoRoot } from "../engine/engine";
import { ConsoleReports, vmImage } from "./vm";

const run = promisify(execFile);

export interface VmHost {
  name: string;
  /** What a virtnet connection takes: the forwarded SSH port, the pinned host key, the client key. */
  connection: { host: string; port: number; hostKey: string; privateKey: string };
  /**
   * With `capture`: a pcap file on this machine of every frame on the host's eth0 (its SSH uplink), written by
   * QEMU on the link's far side (filter-dump): what leaves the host, tags included. Gone when the host stops.
   */
  uplinkCapture?: string;
  /** Runs a shell script on the host as root (over SSH); resolves with its exit code and output. */
  exec(script: string): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Like exec; the script must succeed. Returns its stdout. */
  sh(script: string): Promise<string>;
  /** Stops the VM (everything in it goes with it). */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on("exit", () => running.forEach((p) => p.kill("SIGKILL")));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function keygen(file: string): Promise<string> {
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", path.basename(file), "-f", file]);
  return fs.readFileSync(`${file}.pub`, "utf8").trim();
}

function sshdConfig(): string {
  return [
    "ListenAddress 0.0.0.0:22",
    "HostKey /run/vmhost/ssh_host_ed25519_key",
    "PermitRootLogin prohibit-password",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "UsePAM no",
    "UseDNS no",
    "AuthorizedKeysFile /run/vmhost/authorized_keys",
    "Subsystem sftp internal-sftp",
    "PrintMotd no",
    "MaxStartups 100:30:200",
    "",
  ].join("\n");
}

/**
 * Boots one host VM per name, in parallel; with `trunk` (two names), their eth1s form one segment. Resolves
 * when each host's sshd answers. Each VM takes 512 MB and boots in some seconds under TCG.
 */
export async function startVmHosts(
  names: string[],
  opts: { trunk?: boolean; capture?: boolean } = {},
): Promise<VmHost[]> {
  const img = await vmImage();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "virtnet-vmhost-"));
  const clientKey = path.join(dir, "client");
  const clientPub = await keygen(clientKey);
  const trunkPort = opts.trunk ? await freePort() : 0;
  const hosts = await Promise.all(
    names.map(async (name, i) => {
      const cfg = path.join(dir, name);
      fs.mkdirSync(cfg);
      const hostKey = await keygen(path.join(cfg, "ssh_host_ed25519_key"));
      fs.writeFileSync(path.join(cfg, "authorized_keys"), `${clientPub}\n`);
      fs.writeFileSync(path.join(cfg, "sshd_config"), sshdConfig());
      fs.writeFileSync(path.join(cfg, "hostname"), `${name}\n`);
      return { name, i, cfg, hostKey, port: await freePort() };
    }),
  );
  const started: VmHost[] = [];
  // The keys and configuration go with the last of these hosts.
  let left = hosts.length;
  const stopped = () => {
    if (--left === 0) fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const h of hosts) {
      const argv = [
        ...["-accel", "tcg", "-m", "512", "-nographic", "-no-reboot", "-kernel", img.kernel],
        ...["-initrd", img.hostInitrd, "-append", "console=ttyS0 panic=1 quiet"],
        ...["-fsdev", "local,id=root,path=/,security_model=none,readonly=on,multidevs=remap"],
        ...["-device", "virtio-9p-pci,fsdev=root,mount_tag=root"],
        ...["-fsdev", `local,id=cfg,path=${h.cfg},security_model=none,readonly=on`],
        ...["-device", "virtio-9p-pci,fsdev=cfg,mount_tag=cfg"],
        ...["-netdev", `user,id=mgmt,restrict=on,hostfwd=tcp:127.0.0.1:${h.port}-:22`],
        ...["-device", "virtio-net-pci,netdev=mgmt"],
      ];
      const capture = opts.capture ? path.join(dir, `${h.name}-eth0.pcap`) : undefined;
      if (capture) argv.push("-object", `filter-dump,id=dump,netdev=mgmt,file=${capture}`);
      if (opts.trunk) {
        // The first host listens, the second connects: one Ethernet segment between their eth1s.
        const end = h.i === 0 ? `listen=127.0.0.1:${trunkPort}` : `connect=127.0.0.1:${trunkPort}`;
        argv.push("-netdev", `socket,id=trunk,${end}`);
        argv.push(
          "-device",
          `virtio-net-pci,netdev=trunk,mac=52:54:00:7e:00:${String(h.i + 1).padStart(2, "0")}`,
        );
      }
      const host = await boot(h.name, argv, h.port, h.hostKey, clientKey, dir, stopped);
      started.push(capture ? { ...host, uplinkCapture: capture } : host);
    }
    await Promise.all(started.map((h) => h.exec("true")));
  } catch (e) {
    await Promise.all(started.map((h) => h.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return started;
}

async function boot(
  name: string,
  argv: string[],
  port: number,
  hostKey: string,
  clientKey: string,
  dir: string,
  stopped: () => void,
): Promise<VmHost> {
  const qemu = spawn("qemu-system-x86_64", argv, { stdio: ["ignore", "pipe", "pipe"] });
  running.add(qemu);
  const reports = new ConsoleReports();
  const closed = new Promise<void>((resolve) => qemu.on("close", () => resolve()));
  const onData = (d: Buffer) => reports.add(d.toString("latin1"));
  qemu.stdout.on("data", onData);
  qemu.stderr.on("data", onData);
  const knownHosts = path.join(dir, `${name}.known_hosts`);
  fs.writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostKey}\n`);
  const ssh = [
    ...[
      "-F",
      "/dev/null",
      "-i",
      clientKey,
      "-p",
      String(port),
      "-o",
      "BatchMode=yes",
      "-o",
      "IdentitiesOnly=yes",
    ],
    ...["-o", `UserKnownHostsFile=${knownHosts}`, "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR"],
    // One connection for all of a test's commands.
    ...["-o", "ControlMaster=auto", "-o", `ControlPath=${dir}/${name}.cm`, "-o", "ControlPersist=600"],
    "root@127.0.0.1",
  ];
  const exec = (script: string) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const p = spawn("ssh", [...ssh, "--", "sh", "-c", quote([script])], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      p.stdout.on("data", (d) => (stdout += d));
      p.stderr.on("data", (d) => (stderr += d));
      p.on("close", (code) => resolve({ code: code ?? 255, stdout, stderr }));
    });
  const stop = async () => {
    await run("ssh", [...ssh.slice(0, -1), "-O", "exit", "root@127.0.0.1"]).catch(() => undefined);
    qemu.kill("SIGTERM");
    await closed;
    if (running.delete(qemu)) stopped();
  };
  // Up when its sshd answers (boot to sshd: some seconds under TCG).
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (qemu.exitCode !== null || qemu.signalCode !== null)
      throw new Error(`host VM ${name} exited\n--- console tail ---\n${reports.tail(30)}`);
    if (reports.log.includes("VMH-READY") && (await exec("true")).code === 0) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`host VM ${name}: no sshd within 120 s\n--- console tail ---\n${reports.tail(30)}`);
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  const privateKey = fs.readFileSync(clientKey, "utf8");
  return {
    name,
    connection: { host: "127.0.0.1", port, hostKey, privateKey },
    exec,
    sh: async (script) => {
      const r = await exec(script);
      if (r.code !== 0) throw new Error(`${name}: ${script}: exit ${r.code}: ${r.stderr}`);
      return r.stdout;
    },
    stop,
  };
}

// Guests inside a host VM: network namespaces named "g-<name>".

/** A guest on `bridge`: a namespace whose eth0 is a veth, its other end ("vg-<name>") on the bridge. */
export async function vmGuestAdd(h: VmHost, guest: string, bridge: string, cidr?: string): Promise<void> {
  const ns = `g-${guest}`;
  await h.sh(
    [
      `ip netns add ${ns}`,
      `ip link add vg-${guest} type veth peer name eth0 netns ${ns}`,
      `ip link set vg-${guest} master ${bridge} up`,
      `ip -n ${ns} link set lo up`,
      `ip -n ${ns} link set eth0 up`,
      ...(cidr ? [`ip -n ${ns} addr add ${cidr} dev eth0`] : []),
    ].join(" && "),
  );
}

/** A guest behind TAP `tap` (a Port): its eth0 is wired to the TAP by tapwire.py, as a VM's NIC is. */
export async function vmTapGuestAdd(h: VmHost, guest: string, tap: string, cidr?: string): Promise<void> {
  const ns = `g-${guest}`;
  const wire = path.join(repoRoot(), "tests", "support", "tapwire.py");
  await h.sh(
    [
      `ip netns add ${ns}`,
      `{ setsid python3 ${quote([wire])} ${tap} /run/netns/${ns} > /tmp/wire-${guest}.log 2>&1 < /dev/null & }`,
      // python3 over 9p under TCG takes a while to start.
      `i=0; until grep -q ready /tmp/wire-${guest}.log; do i=$((i+1)); [ $i -lt 600 ] || { cat /tmp/wire-${guest}.log >&2; exit 1; }; sleep 0.1; done`,
      `ip -n ${ns} link set lo up`,
      `ip -n ${ns} link set eth0 up`,
      ...(cidr ? [`ip -n ${ns} addr add ${cidr} dev eth0`] : []),
    ].join(" && "),
  );
}

/** Runs a command in a guest's namespace. */
export function vmGuestExec(h: VmHost, guest: string, script: string) {
  return h.exec(`ip netns exec g-${guest} sh -c ${quote([script])}`);
}

/** busybox ping from the guest, up to 3 echo requests (ARP over TCG takes a while): true when a reply came. */
export async function vmGuestPing(h: VmHost, guest: string, address: string): Promise<boolean> {
  return (await vmGuestExec(h, guest, `busybox ping -c 3 -W 2 ${address}`)).code === 0;
}

/** A DHCP lease for the guest (the lab's udhcpc script); the leased address, or null when none came. */
export async function vmGuestDhcp(h: VmHost, guest: string, tries = 10): Promise<string | null> {
  const script = path.join(repoRoot(), "tests", "lab", "udhcpc.sh");
  const lease = `/tmp/lease-${guest}`;
  await vmGuestExec(
    h,
    guest,
    `VIRTNET_LAB_LEASE_FILE=${lease} busybox udhcpc -f -q -n -i eth0 -t ${tries} -T 1 -s ${quote([script])}`,
  );
  const r = await h.exec(`sed -n 's/^ip=//p' ${lease}`);
  return r.code === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

/** Removes a guest: its wire (if any) ends with its namespace. */
export async function vmGuestDel(h: VmHost, guest: string): Promise<void> {
  const ns = `g-${guest}`;
  await h.exec(
    `for p in $(ip netns pids ${ns} 2>/dev/null); do kill $p; done; ip -n ${ns} link del eth0 2>/dev/null; ip netns del ${ns} 2>/dev/null; :`,
  );
}

/** Everything virtnet could leave on a host VM: links, bridge VLANs and FDB, virtnet's files. */
export function vmHostSnapshot(h: VmHost): Promise<string> {
  return h.sh(
    [
      "ip -o link show | sed -E 's/^[0-9]+: //; s/(NO-CARRIER|LOWER_UP),?//g; s/state [A-Z]+ //'",
      "bridge vlan show",
      "bridge fdb show | grep -v -e '^33:33' -e '^01:00:5e'",
      "find /var/lib/virtnet /run/virtnet 2>/dev/null | sort",
    ].join("; echo ---; "),
  );
}
