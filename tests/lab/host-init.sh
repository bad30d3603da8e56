#!/bin/bash
# PID 1 of a virtnet lab host. Started by tests/lab/lab.ts as
#   ip netns exec vnl-<host> unshare --mount --propagation slave --uts --ipc --pid --fork --kill-child \
#     --mount-proc host-init.sh <host> <host state dir>
# It gives the host a private view of the machine, configures the host's side of the lab links, then
# becomes the host's sshd. When sshd exits the kernel kills everything else in the host's pid namespace.
set -euo pipefail
name=$1
dir=$2

# Network: addresses and routes of mgmt0/eth0 (written by lab.ts as an `ip -batch` file).
echo 0 >/proc/sys/net/ipv4/ip_forward
echo 1 >/proc/sys/net/ipv6/conf/mgmt0/disable_ipv6
ip -batch "$dir/net.batch"

# Files: /etc, /var and /home read the machine's files and write to this host's upper dirs, which live in
# the lab's state dir in the root namespace (they survive a simulated reboot of the host).
for d in etc var home; do
  mount -t overlay "vnl-$name-$d" -o "lowerdir=/$d,upperdir=$dir/upper/$d,workdir=$dir/work/$d" "/$d"
done
mount -t tmpfs -o mode=0700 "vnl-$name-root" /root
mount -t tmpfs -o mode=1777 "vnl-$name-tmp" /tmp
mount -t tmpfs -o mode=1777 "vnl-$name-shm" /dev/shm
# Drop this namespace's copy of the root namespace's netns mounts, so that it holds no other namespace
# alive (a deleted namespace must really go away), then give the host an empty /run.
umount -l /run/netns 2>/dev/null || true
mount -t tmpfs -o mode=0755 "vnl-$name-run" /run
mkdir -m 0755 /run/sshd
hostname "$name"

exec /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config -o "SetEnv=VIRTNET_LAB_HOST=$name"
