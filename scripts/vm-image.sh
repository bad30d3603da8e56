#!/usr/bin/env bash
# Builds, once, the small VMs the tests boot under QEMU: Debian's kernel (from the package linux-image-amd64
# depends on, downloaded and unpacked, never installed), the virtio-net module chain, and an initramfs of a
# static busybox (busybox-static, unpacked: it conflicts with the busybox package the lab uses) and
# scripts/vm-guest/init; and for a test host VM (tests/support/vmHost.ts), a second initramfs with the modules
# a host needs that the machine's kernel lacks (VLAN-aware bridges, 802.1Q) and scripts/vm-host/.
# Cached in $VIRTNET_VM_CACHE (default /var/cache/virtnet-vm): the kernel by its version, each initramfs by a
# hash of what went into it, so a changed init or kernel rebuilds and nothing else does; older entries are
# removed. Run as root. Prints kernel=<path>, initrd=<path> and hostinitrd=<path>.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${VIRTNET_VM_CACHE:-/var/cache/virtnet-vm}
init=$here/vm-guest/init
hostinit=$here/vm-host/init
stage2=$here/vm-host/stage2
# virtio_pci is the bus driver the NIC sits on: no symbol dependency of virtio_net, so it is named here.
modules=(virtio_pci virtio_net)
# A host: its root over 9p, bridges with VLANs, 802.1Q, TAPs, veths, nf_tables, VXLAN (stretched segments).
host_modules=(virtio_pci virtio_net 9pnet_virtio 9p bridge 8021q tun veth nf_tables br_netfilter vxlan)

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9 # one builder at a time
work=$(mktemp -d "$cache/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
log() { echo "vm-image: $*" >&2; }

kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}
resolve() {
  package=$(kernel_package)
  version=${package#linux-image-}
  kernel=$cache/kernel-$version
}
apt_update() {
  log "$1: apt-get update"
  apt-get update -qq
}
download() { # package -> unpacked into $work/$1
  (cd "$work" && apt-get download -qq -o APT::Sandbox::User=root "$1") || return 1
  dpkg-deb -x "$work/$1"_*.deb "$work/$1"
}

resolve
[ -n "$package" ] || { apt_update "apt knows no linux-image-amd64"; resolve; }
[ -n "$package" ] || { log "cannot find the kernel package linux-image-amd64 depends on"; exit 1; }
# The load order of a module list: each module after what it depends on, once. Copies them into $2.
module_order() { # tree dir modules...
  local tree=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  for m in "$@"; do
    modprobe -d "$tree" -S "$version" --show-depends "$m"
  done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }' | while read -r ko; do
    cp "$ko" "$dir/"
    basename "$ko" .ko >>"$dir/order"
  done
}

# A cache made for another module list is made again.
if [ ! -f "$kernel/vmlinuz" ] || [ ! -f "$kernel/host-modules/order" ] ||
  [ "$(cat "$kernel/host-modules/list" 2>/dev/null)" != "${host_modules[*]}" ]; then
  log "kernel $version: downloading and unpacking $package"
  # Package lists older than the mirror name a kernel it no longer has: refresh them once.
  download "$package" || { apt_update "$package is not on the mirror"; resolve; download "$package"; }
  depmod -b "$work/$package" "$version"
  mkdir -p "$work/kernel"
  cp "$work/$package/boot/vmlinuz-$version" "$work/kernel/vmlinuz"
  module_order "$work/$package" "$work/kernel/modules" "${modules[@]}"
  module_order "$work/$package" "$work/kernel/host-modules" "${host_modules[@]}"
  echo "${host_modules[*]}" >"$work/kernel/host-modules/list"
  rm -rf "$work/$package" "$work/$package"_*.deb # the unpacked tree is ~400 MB
  rm -rf "$kernel"
  mv "$work/kernel" "$kernel"
fi

busybox=$cache/busybox
if [ ! -x "$busybox" ]; then
  log "busybox: downloading and unpacking busybox-static"
  download busybox-static || { apt_update "busybox-static is not on the mirror"; download busybox-static; }
  install -m 0755 "$work/busybox-static/bin/busybox" "$busybox.new"
  mv "$busybox.new" "$busybox"
fi

# An initramfs of busybox, an init and a module directory (its "order" file lists the load order): $1 the file
# to write, $2 the module directory, $3 the /init, then other files for its root.
pack_initramfs() {
  local out=$1 mods=$2 init_file=$3 root=$work/root
  shift 3
  rm -rf "$root"
  mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules}
  cp "$busybox" "$root/bin/busybox"
  ln -s busybox "$root/bin/sh"
  install -m 0755 "$init_file" "$root/init"
  for f in "$@"; do install -m 0755 "$f" "$root/"; done
  cp "$mods"/* "$root/lib/modules/"
  (cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null --create --format=newc --quiet) |
    gzip -9 >"$work/initrd"
  mv "$work/initrd" "$out"
}

key=$(cat "$init" "$kernel/modules/order" "$busybox" | sha256sum | cut -c1-16)
initrd=$cache/initramfs-$version-$key.cpio.gz
if [ ! -f "$initrd" ]; then
  log "initramfs $version-$key: packing"
  pack_initramfs "$initrd" "$kernel/modules" "$init"
fi

hostkey=$(cat "$hostinit" "$stage2" "$kernel/host-modules/order" "$busybox" | sha256sum | cut -c1-16)
hostinitrd=$cache/hostinitramfs-$version-$hostkey.cpio.gz
if [ ! -f "$hostinitrd" ]; then
  log "host initramfs $version-$hostkey: packing"
  pack_initramfs "$hostinitrd" "$kernel/host-modules" "$hostinit" "$stage2"
fi

# Only the current entries stay.
for old in "$cache"/kernel-* "$cache"/initramfs-* "$cache"/hostinitramfs-*; do
  [ "$old" = "$kernel" ] || [ "$old" = "$initrd" ] || [ "$old" = "$hostinitrd" ] || rm -rf "$old"
done
echo "kernel=$kernel/vmlinuz"
echo "initrd=$initrd"
echo "hostinitrd=$hostinitrd"
