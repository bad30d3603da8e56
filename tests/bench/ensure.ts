// The Debian packages the bench needs, installed when missing (like scripts/ensure-deps.sh does for the tests),
// plus Debian's libvirt daemon and client for the side-by-side rows. libvirt-daemon-system is NOT installed:
// it would bring units, polkit/dbus and a default network; the bench runs libvirtd by hand in a lab host.
import { spawnSync } from "node:child_process";
import { LIBVIRT_PACKAGES } from "../lab/libvirt";

export const BENCH_PACKAGES = [
  "openssh-server",
  "openssh-client",
  "openssl",
  "dnsmasq-base",
  "nftables",
  "iptables",
  "busybox",
  "iproute2",
  "procps",
  "util-linux",
  "iperf3", // guest-to-guest throughput over VXLAN (stretch.ts)
  // the VM row (tests/bench/vm.ts)
  "qemu-system-x86",
  "cpio",
  ...LIBVIRT_PACKAGES,
];

function installed(pkg: string): boolean {
  const r = spawnSync("dpkg-query", ["-W", "-f=${Status}", pkg], { encoding: "utf8" });
  return r.status === 0 && r.stdout.includes("install ok installed");
}

/** Installs what is missing; returns the packages it installed. Throws when apt-get fails. */
export function ensureDebianPackages(log: (s: string) => void = console.error): string[] {
  const missing = BENCH_PACKAGES.filter((p) => !installed(p));
  if (missing.length === 0) return [];
  log(`bench: installing Debian packages: ${missing.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const update = spawnSync("apt-get", ["update", "-qq"], { stdio: ["ignore", "ignore", "inherit"], env });
  if (update.status !== 0) throw new Error(`apt-get update failed (exit ${update.status})`);
  const inst = spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], {
    stdio: ["ignore", "ignore", "inherit"],
    env,
  });
  if (inst.status !== 0) throw new Error(`apt-get install ${missing.join(" ")} failed (exit ${inst.status})`);
  return missing;
}
