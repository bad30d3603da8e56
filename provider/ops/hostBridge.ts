// The shell text of a HostBridge: its read-only probe, and the runner that makes the change detached from the
// SSH session (setsid), holding virtnet's host lock, and rolls it back by itself unless virtnet confirms it
// over a new SSH connection in time. Every value arrives as a positional argument.
import { HOST_LOCK_PATH } from "../naming";
import { LOCK_WAIT_SECONDS } from "./helpers";

/** Sections: the uplink's and the bridge's links, the uplink's addresses and routes, what else holds it. */
export const HOST_BRIDGE_PROBE = String.raw`u=$1; b=$2; state=$3; run=$4
sect() { printf '@%s\n' "$1"; }
sect link; ip -j -d link show dev "$u" 2>/dev/null || echo null
sect bridge; ip -j -d link show dev "$b" 2>/dev/null || echo null
sect addr; ip -j addr show dev "$u" 2>/dev/null || echo null
sect route4; ip -4 -j route show table all dev "$u" 2>/dev/null || echo null
sect route6; ip -6 -j route show table all dev "$u" 2>/dev/null || echo null
sect uplinkVlans; bridge -compressvlans -j vlan show dev "$u" 2>/dev/null || echo null
sect bridgeAddr; ip -j addr show dev "$b" 2>/dev/null || echo null
sect wireless; if [ -e "/sys/class/net/$u/wireless" ] || [ -e "/sys/class/net/$u/phy80211" ]; then echo yes; else echo no; fi
sect managers
if [ -d /run/NetworkManager ] && command -v nmcli >/dev/null 2>&1; then
  s=$(nmcli -t -g GENERAL.STATE device show "$u" 2>/dev/null)
  case $s in ''|*unmanaged*) ;; *) echo NetworkManager ;; esac
fi
i=$(cat "/sys/class/net/$u/ifindex" 2>/dev/null)
[ -n "$i" ] && grep -qs '^ADMIN_STATE=configured' "/run/systemd/netif/links/$i" && echo systemd-networkd
for f in /etc/netplan/*.yaml; do [ -f "$f" ] && grep -qsw -- "$u" "$f" && { echo netplan; break; }; done
sect dhcp
for p in /proc/[0-9]*; do
  read -r n < "$p/comm" 2>/dev/null || continue
  case $n in dhclient|udhcpc|dhcpcd) printf '%s %s ' "$p" "$n"; base64 -w0 < "$p/cmdline" 2>/dev/null; echo ;; esac
done
sect saved; cat "$state/uplink.json" 2>/dev/null
sect status; cat "$run/status" 2>/dev/null
sect end
`;

/**
 * Runs detached: $1 state dir, $2 run dir, $3 seconds to wait for confirmation, $4 the `ip -batch` that makes
 * the change, $5 the one that undoes it, $6 the change's token, $7 and $8 the scripts that carry a DHCP client
 * along with $4 and $5 (empty: none), $9 and $10 the `bridge -batch` (VLANs) run after $4 and after $5 (skipped
 * when empty). Writes "<what> <token>[: why]" to the status file.
 */
export const HOST_BRIDGE_RUNNER = String.raw`run=$2; timeout=$3; apply=$4; undo=$5; token=$6; apply_carry=$7; undo_carry=$8; applyv=$9; undov=${"${10}"}
status() { printf '%s %s%s\n' "$1" "$token" "$2" > "$run/status.tmp" && mv -f "$run/status.tmp" "$run/status"; }
# $1 a batch, $2 its carrying script or nothing, $3 -force or nothing.
step() { if [ -n "$2" ]; then sh "$2" "$1" $3; else ip $3 -batch "$1"; fi; }
exec 9<${HOST_LOCK_PATH} || exit 1
if ! flock -w ${LOCK_WAIT_SECONDS} 9; then status failed ": timed out waiting for virtnet's host lock"; exit 1; fi
rm -f "$run/confirm"
status applying ""
rollback() {
  step "$undo" "$undo_carry" -force 2>>"$run/log"
  [ ! -s "$undov" ] || bridge -force -batch "$undov" 2>>"$run/log"
}
if ! { step "$apply" "$apply_carry" && { [ ! -s "$applyv" ] || bridge -batch "$applyv"; }; } 2>"$run/log"; then
  rollback
  status "rolled-back" ": the change failed: $(head -n 1 "$run/log")"
  exit 1
fi
status applied ""
# By the clock, not by turns of the loop: on a slow host a turn takes far more than 0.1 s.
end=$(( $(date +%s) + timeout ))
while [ "$(date +%s)" -lt "$end" ]; do
  if [ -f "$run/confirm" ] && read -r c < "$run/confirm" && [ "$c" = "$token" ]; then status confirmed ""; exit 0; fi
  sleep 0.1
done
rollback
status "rolled-back" ": no confirmation over a new SSH connection within $timeout s"
exit 1
`;

/** Starts the runner (its text on stdin) in a session of its own: a dropped SSH connection cannot stop it. */
export const HOST_BRIDGE_START = String.raw`mkdir -p "$2" && cat > "$2/runner.sh" || exit 1
setsid sh "$2/runner.sh" "$@" </dev/null >/dev/null 2>&1 &
i=0; while [ $i -lt 50 ]; do grep -qs "$6" "$2/status" && exit 0; sleep 0.1; i=$((i+1)); done
echo "the detached change did not start" >&2; exit 1
`;

/** Over the new connection: the change is confirmed when its state is there ($1 run dir, $2 token). */
export const HOST_BRIDGE_CONFIRM = String.raw`printf '%s\n' "$2" > "$1/confirm.tmp" && mv -f "$1/confirm.tmp" "$1/confirm"`;

/**
 * After a confirmed create: the boot-time pieces ($1 the restore entry, $2 the systemd unit, $3 the wants
 * link, $4 the systemd runtime dir; the entry's and unit's text in $5 and $6), written only when they differ.
 */
export const HOST_BRIDGE_BOOT = String.raw`set -e
[ "$(cat "$1" 2>/dev/null)" = "$5" ] || { printf '%s\n' "$5" > "$1.tmp"; chmod 0755 "$1.tmp"; mv -f "$1.tmp" "$1"; }
if [ -d "$4" ]; then
  [ "$(cat "$2" 2>/dev/null)" = "$6" ] || { printf '%s\n' "$6" > "$2.tmp"; mv -f "$2.tmp" "$2"; }
  [ -d "$(dirname "$3")" ] && ln -sfn "$2" "$3"
fi
:`;

/**
 * After a confirmed delete: the HostBridge's files go ($1 state dir, $2 run dir), then its parent directories
 * when empty, and virtnet's boot-time pieces ($3 entry, $4 unit, $5 wants link) and state directory ($6, with
 * its generation file $7) when nothing else of virtnet's is left in it.
 */
export const HOST_BRIDGE_FORGET = String.raw`rm -rf -- "$1" "$2"
rmdir -- "$(dirname "$1")" "$(dirname "$2")" 2>/dev/null
left=$(ls -A "$6" 2>/dev/null | grep -vx -e "$(basename "$3")" -e "$(basename "$7")")
if [ -z "$left" ]; then rm -f -- "$3" "$4" "$5" "$7"; rmdir -- "$6" 2>/dev/null; fi
rmdir -- "$(dirname "$(dirname "$2")")" 2>/dev/null
:`;
