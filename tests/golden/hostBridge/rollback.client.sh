#!/bin/sh
# virtnet: carries the DHCP client from br0 to eth0 around the batch $1. Generated: virtnet rewrites this file.
batch=$1; force=$2
clients_on() { for p in /proc/[0-9]*; do read -r n < "$p/comm" 2>/dev/null && [ "$n" = dhclient ] && tr '\0' '\n' < "$p/cmdline" 2>/dev/null | grep -qxF -- "$1" && basename "$p"; done; }
alive() { for p in "$@"; do [ -d "/proc/$p" ] && [ "$(sed 's/.*) //; s/ .*//' "/proc/$p/stat" 2>/dev/null)" != Z ] && return 0; done; return 1; }
lifetimes() { ip -o addr show dev "$1" 2>/dev/null | awk -v a="$2" '$4 == a { for (i = 4; i < NF; i++) { if ($i == "valid_lft") v = $(i + 1); if ($i == "preferred_lft") p = $(i + 1) } } END { if (v ~ /sec$/ && p ~ /sec$/) print v + 0, p + 0 }'; }
lft0=$(lifetimes br0 198.19.0.11/24)
pids=$(clients_on br0)
if [ -n "$pids" ]; then
  kill -TERM $pids 2>/dev/null
  i=0; while [ $i -lt 50 ] && alive $pids; do sleep 0.1; i=$((i + 1)); done
  ! alive $pids || kill -KILL $pids 2>/dev/null
fi
ip $force -batch "$batch"; rc=$?
[ -n "$force" ] || [ $rc -eq 0 ] || exit $rc
[ -z "$lft0" ] || { set -- $lft0; ip addr change 198.19.0.11/24 broadcast 198.19.0.255 dev eth0 valid_lft "$1" preferred_lft "$2"; }
( exec 9<&-; setsid dhclient -4 -v -i -pf /run/dhclient.eth0.pid -lf /var/lib/dhcp/dhclient.eth0.leases -I -df /var/lib/dhcp/dhclient6.eth0.leases eth0 </dev/null >/dev/null 2>&1 & )
exit 0
