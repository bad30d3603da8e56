#!/usr/bin/env bash
# Installs what virtnet's demo and tests need on a Debian 12 machine, as root; safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."

# qemu-system-x86 and cpio: the real VM of tests/e2e/vm.test.ts (scripts/vm-image.sh); docker.io, firewalld, dbus,
# systemd and ifupdown: the neighbours the e2e tests run for real inside lab hosts (tests/e2e/firewall.test.ts);
# iperf3 and iputils-ping: the VXLAN bench row's throughput and tests/e2e/stretch.test.ts's ping -M do.
debian_packages=(openssh-server openssh-client dnsmasq-base nftables iptables busybox tcpdump iproute2 procps sudo util-linux kmod isc-dhcp-client libvirt-clients libxml2-utils libvirt-daemon
  qemu-system-x86 cpio docker.io firewalld dbus systemd ifupdown
  iperf3 iputils-ping)
missing=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ensure-deps: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Start no service on this machine (dockerd or firewalld would change its firewall): the tests start them
  # inside lab hosts. policy-rc.d answers "forbidden" for the duration of the install.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v node >/dev/null || { echo "ensure-deps: Node.js 20 or newer is required" >&2; exit 1; }

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "ensure-deps: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi
# The root is itself a Pulumi project (Pulumi.yaml): give it the node_modules/pulumi-virtnet a user's
# project has, because Pulumi's dynamic-provider plugin resolves the provider's modules from there.
[ -e node_modules/pulumi-virtnet ] || ln -s .. node_modules/pulumi-virtnet
npx tsc -b
