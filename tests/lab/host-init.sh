#!/bin/bash
# PID 1 of a virtnet lab host. Started by tests/lab/lab.ts, already in the host's own cgroup, as
#   ip netns exec vnl-<host> unshare --mount --propagation slave --uts --ipc --pid --cgroup --fork --kill-child \
#     --mount-proc host-init.sh <host> <host state dir> <init>
# It gives the host a private view of the machine, then becomes the host's init:
# - init "sshd": configures the host's side of the lab links itself and execs sshd as PID 1.
# - init "systemd": execs systemd as PID 1, as a container manager does (systemd-nspawn); Debian's own units
#   then configure the links (networking.service, from /etc/network/interfaces) and start sshd (ssh.service).
# When PID 1 exits the kernel kills everything else in the host's pid namespace.
set -euo pipefail
name=$1
dir=$2
init=${3:-sshd}

if [ "$init" = sshd ]; then
  # Network: addresses and routes of mgmt0/eth0 (written by lab.ts as an `ip -batch` file).
  echo 0 >/proc/sys/net/ipv4/ip_forward
  echo 1 >/proc/sys/net/ipv6/conf/mgmt0/disable_ipv6
  ip -batch "$dir/net.batch"
fi

# Files: /etc, /var and /home read the machine's files and write to this host's upper dirs, which live in
# the lab's state dir in the root namespace (they survive a reboot of the host).
for d in etc var home; do
  mount -t overlay "vnl-$name-$d" -o "lowerdir=/$d,upperdir=$dir/upper/$d,workdir=$dir/work/$d" "/$d"
done
# The host's own unit enablement: the machine's /etc/systemd/system (which enables e.g. docker, firewalld and
# postgresql) is not this host's.
mount --bind "$dir/systemd-system" /etc/systemd/system
mount -t tmpfs -o mode=0700 "vnl-$name-root" /root
mount -t tmpfs -o mode=1777 "vnl-$name-tmp" /tmp
mount -t tmpfs -o mode=1777 "vnl-$name-shm" /dev/shm
# Drop this namespace's copy of the root namespace's netns mounts, so that it holds no other namespace
# alive (a deleted namespace must really go away), then give the host an empty /run.
umount -l /run/netns 2>/dev/null || true
mount -t tmpfs -o mode=0755 "vnl-$name-run" /run
# The host's cgroup (its cgroup namespace's root), as a Debian 12 host has it: cgroup v2 at /sys/fs/cgroup.
# dockerd needs it; systemd runs its units in it.
mount -t cgroup2 "vnl-$name-cgroup" /sys/fs/cgroup
hostname "$name"

if [ "$init" = sshd ]; then
  mkdir -m 0755 /run/sshd
  exec /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config -o "SetEnv=VIRTNET_LAB_HOST=$name"
fi

# systemd, as systemd-nspawn starts it: a private /dev, /sys and /proc/sys read-only (so that units which
# would change the machine, such as systemd-udevd and most of systemd-sysctl, do not run or cannot write),
# except /proc/sys/net, which is the host's own network namespace.
mount -t tmpfs -o mode=0755,nosuid "vnl-$name-dev" /dev
for n in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
  IFS=: read -r node major minor <<<"$n"
  mknod -m 0666 "/dev/$node" c "$major" "$minor"
done
# /dev/net/tun too, as systemd-nspawn gives it: a Port's TAP is opened through it.
mkdir -m 0755 /dev/net
mknod -m 0666 /dev/net/tun c 10 200
mkdir -m 0755 /dev/pts /dev/shm
mount -t tmpfs -o mode=1777 "vnl-$name-shm" /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 "vnl-$name-pts" /dev/pts
ln -s pts/ptmx /dev/ptmx
ln -s /proc/self/fd /dev/fd
for i in 0:stdin 1:stdout 2:stderr; do ln -s "/proc/self/fd/${i%%:*}" "/dev/${i#*:}"; done
mount -o remount,bind,ro /sys
mount --bind /proc/sys /proc/sys
mount --bind /proc/sys/net /proc/sys/net
mount -o remount,bind,ro /proc/sys
# A boot id of this boot's own (the kernel's is the machine's), as systemd-nspawn gives its containers.
cat /proc/sys/kernel/random/uuid >/run/boot_id
mount --bind /run/boot_id /proc/sys/kernel/random/boot_id
rm /run/boot_id
exec env -i container=virtnet-lab PATH=/usr/sbin:/usr/bin:/sbin:/bin /lib/systemd/systemd
