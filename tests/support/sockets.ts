// What the kernel says about this process's own TCP sockets: which of them go to an address, and whether
// Nagle is off on them (TCP_NODELAY), read with getsockopt(2) on the very socket. Node has no getsockopt, so
// a perl child takes a copy of the descriptor (pidfd_getfd(2), Linux 5.6+; perl-base is on every Debian).
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { isIPv4 } from "node:net";

export interface SocketOption {
  localPort: number;
  /** TCP_NODELAY as the kernel has it on the socket. */
  noDelay: boolean;
}

// Syscall numbers shared by every architecture since Linux 5.x.
const PIDFD_OPEN = 434;
const PIDFD_GETFD = 438;
const READ_NODELAY = `
use Socket qw(IPPROTO_TCP TCP_NODELAY);
my $pid = shift @ARGV;
my $pidfd = syscall(${PIDFD_OPEN}, $pid + 0, 0);
die "pidfd_open: $!\\n" if $pidfd < 0;
for my $fd (@ARGV) {
  my $copy = syscall(${PIDFD_GETFD}, $pidfd, $fd + 0, 0);
  die "pidfd_getfd $fd: $!\\n" if $copy < 0;
  open(my $h, "+<&=", $copy) or die "fd $copy: $!\\n";
  my $v = getsockopt($h, IPPROTO_TCP, TCP_NODELAY) or die "getsockopt: $!\\n";
  print "$fd ", unpack("i", $v), "\\n";
}`;

/** /proc/net/tcp's form of an IPv4 address and port: little-endian hex address, big-endian hex port. */
function procAddress(ip: string, port: number): string {
  const hex = ip
    .split(".")
    .map((o) => Number(o).toString(16).padStart(2, "0"))
    .reverse()
    .join("");
  return `${hex}:${port.toString(16).padStart(4, "0")}`.toUpperCase();
}

/** Established TCP sockets of this process to `ip:port` (IPv4), with the kernel's TCP_NODELAY of each. */
export function tcpNoDelayTo(ip: string, port: number): SocketOption[] {
  if (!isIPv4(ip)) throw new Error(`tcpNoDelayTo: ${ip} is not an IPv4 address`);
  const remote = procAddress(ip, port);
  const byInode = new Map<string, number>(); // socket inode -> local port
  for (const line of fs.readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length > 9 && f[2] === remote && f[3] === "01") byInode.set(f[9], parseInt(f[1].split(":")[1], 16));
  }
  const fds = new Map<string, number>(); // fd -> local port
  for (const fd of fs.readdirSync("/proc/self/fd")) {
    let target = "";
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode && byInode.has(inode)) fds.set(fd, byInode.get(inode)!);
  }
  if (fds.size === 0) return [];
  const out = execFileSync("perl", ["-e", READ_NODELAY, String(process.pid), ...fds.keys()], {
    encoding: "utf8",
  });
  return out
    .trim()
    .split("\n")
    .map((l) => l.split(" "))
    .map(([fd, v]) => ({ localPort: fds.get(fd)!, noDelay: v !== "0" }));
}
