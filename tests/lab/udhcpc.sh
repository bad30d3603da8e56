#!/bin/sh
# busybox udhcpc script of lab guests (used instead of Debian's default script, which rewrites the machine's
# /etc/resolv.conf). Configures address and default route on $interface and records the lease as
# key=value lines in $VIRTNET_LAB_LEASE_FILE.
set -u
prefix_of() {
  bits=0
  for octet in $(echo "$1" | tr . ' '); do
    case $octet in
      255) bits=$((bits + 8)) ;; 254) bits=$((bits + 7)) ;; 252) bits=$((bits + 6)) ;;
      248) bits=$((bits + 5)) ;; 240) bits=$((bits + 4)) ;; 224) bits=$((bits + 3)) ;;
      192) bits=$((bits + 2)) ;; 128) bits=$((bits + 1)) ;;
    esac
  done
  echo "$bits"
}
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound | renew)
    prefix=${mask:-}
    [ -n "$prefix" ] || prefix=$(prefix_of "${subnet:-255.255.255.0}")
    ip -4 addr flush dev "$interface"
    [ -z "${mtu:-}" ] || ip link set dev "$interface" mtu "$mtu"
    ip addr add "$ip/$prefix" dev "$interface"
    gw=""
    for r in ${router:-}; do gw=$r; break; done
    [ -z "$gw" ] || ip route replace default via "$gw" dev "$interface"
    tmp="$VIRTNET_LAB_LEASE_FILE.tmp"
    {
      echo "ip=$ip"
      echo "prefix=$prefix"
      echo "router=$gw"
      echo "dns=${dns:-}"
      echo "hostname=${hostname:-}"
      echo "domain=${domain:-}"
      echo "lease=${lease:-}"
      echo "serverid=${serverid:-}"
      echo "mtu=${mtu:-}"
    } >"$tmp"
    mv "$tmp" "$VIRTNET_LAB_LEASE_FILE"
    ;;
esac
exit 0
