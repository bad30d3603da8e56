#!/usr/bin/env bash
# Builds, once, the small VM the tests boot under QEMU: Debian's kernel (from the package linux-image-amd64
# depends on, downloaded and unpacked, never installed), the virtio-net module chain, and an initramfs of a
# static busybox (busybox-static, unpacked: it conflicts with the busybox package the lab uses) and
# scripts/vm-guest/init. Cached in $VIRTNET_VM_CACHE (default /var/cache/virtnet-vm): the kernel by its
# version, the initramfs by a hash of what went into it, so a changed init or kernel rebuilds and nothing
# else does; older entries are removed. Run as root. Prints kernel=<path> and initrd=<path>.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${VIRTNET_VM_CACHE:-/var/cache/virtnet-vm}
init=$here/vm-guest/init
# virtio_pci is the bus driver the NIC sits on: no symbol dependency of virtio_net, so it is named here.
modules=(virtio_pci virtio_net)

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
if [ ! -f "$kernel/vmlinuz" ]; then
  log "kernel $version: downloading and unpacking $package"
  # Package lists older than the mirror name a kernel it no longer has: refresh them once.
  download "$package" || { apt_update "$package is not on the mirror"; resolve; download "$package"; }
  depmod -b "$work/$package" "$version"
  mkdir -p "$work/kernel/modules"
  cp "$work/$package/boot/vmlinuz-$version" "$work/kernel/vmlinuz"
  # The load order: each module after what it depends on, once.
  for m in "${modules[@]}"; do
    modprobe -d "$work/$package" -S "$version" --show-depends "$m"
  done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }' | while read -r ko; do
    cp "$ko" "$work/kernel/modules/"
    basename "$ko" .ko >>"$work/kernel/modules/order"
  done
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

key=$(cat "$init" "$kernel/modules/order" "$busybox" | sha256sum | cut -c1-16)
initrd=$cache/initramfs-$version-$key.cpio.gz
if [ ! -f "$initrd" ]; then
  log "initramfs $version-$key: packing"
  root=$work/root
  mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules}
  cp "$busybox" "$root/bin/busybox"
  ln -s busybox "$root/bin/sh"
  install -m 0755 "$init" "$root/init"
  cp "$kernel"/modules/* "$root/lib/modules/"
  (cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null --create --format=newc --quiet) |
    gzip -9 >"$work/initrd"
  mv "$work/initrd" "$initrd"
fi

# Only the current entries stay.
for old in "$cache"/kernel-* "$cache"/initramfs-*; do
  [ "$old" = "$kernel" ] || [ "$old" = "$initrd" ] || rm -rf "$old"
done
echo "kernel=$kernel/vmlinuz"
echo "initrd=$initrd"
