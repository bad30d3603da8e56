// The shell functions a round script defines: those ops.ts calls (write_file, make_dir, dnsmasq_start,
// bridge_deleted, ...) and those the script composer (script.ts) uses to run, undo and finish its segments.
// $conf and $pidfile come from the probe's variables.
import { GENERATION_FILE, ROUND_TMP_PREFIX, STATE_DIR, SYSCTL, sysctlPath } from "../naming";
import { PROC_START } from "./probe";
import { sh } from "./shell";

export const EXIT_HOST_CHANGED = 75;
export const EXIT_LOCK_TIMEOUT = 73;
export const EXIT_STEP_FAILED = 70;
export const STEP_FAILED_MARKER = "virtnet-step-failed: ";
/** On stderr before a segment's own output; a failure marker belongs to the segment named last. */
export const SEGMENT_MARKER = "virtnet-segment: ";
/** On stderr when a segment failed and the ones after it did not run. */
export const STOPPED_MARKER = "virtnet-round-stopped: ";
export const LOCK_WAIT_SECONDS = 60;
/** The mode of the directories virtnet makes. */
export const DIR_MODE = "0755";

/** A path of naming.ts in shell text. */
const q = (path: string) => sh(path);
const UUID = q(sysctlPath(SYSCTL.randomUuid));

export const HELPERS =
  PROC_START +
  String.raw`
undo_stack=""
undo_push() { undo_stack="$1
$undo_stack"; }
rollback() {
  echo "${STEP_FAILED_MARKER}$1" >&2
  job_wait "$vn_seg" >/dev/null 2>&1 # its own start in the background, before the undo stops it
  eval "$undo_stack"
  vn_stop=$vn_seg
  eval "vn_nft_$vn_stop=''"
  # The segments before it stay: their staged rules and late steps (which switch to their own segment).
  [ -n "$vn_finished" ] || finish_segments $((vn_stop - 1))
  hoisted_undo "$vn_stop"
  wait
  dnsmasqs_gone
  [ "$vn_stop" -gt 1 ] && generation_next
  echo "${STOPPED_MARKER}$vn_stop" >&2
  exit ${EXIT_STEP_FAILED}
}
# The round's bridges go in one kernel operation, in the background while the segments run: each "ip link del"
# waits for an RCU grace period (~40 ms), "ip link del group" waits once for all of them. The group number is
# random, and the deletion only goes ahead if the group holds exactly these bridges. Its errors are not kept:
# bridge_deleted deletes what is left one by one, which names the bridge and the kernel's reason.
bridges_delete_start() {
  [ $# -gt 0 ] || return 0
  if [ $# = 1 ]; then
    ip link del dev "$1" 2>/dev/null &
  else
    IFS=- read -r vn_h vn_rest < ${UUID}
    vn_group=$(( 0x$vn_h % 268435456 + 268435456 ))
    (
      for b in "$@"; do echo "link set dev $b group $vn_group"; done | ip -force -batch - || exit 1
      [ "$(ip -o link show group "$vn_group" | wc -l)" = $# ] || exit 1
      ip link del group "$vn_group"
    ) 2>/dev/null &
  fi
  vn_bridges_job=$!
}
# A step run in the background (Action.background) for segment $vn_seg: its output goes to a file of the
# round's own, shown only if it fails; finish_segments waits for it. The job waits for the dnsmasq this shell
# was stopping. One job at a time per segment: a second waits for the first.
vn_tmp=""
in_background() {
  job_wait "$vn_seg" || { cat "$vn_tmp/$vn_seg" >&2; return 1; }
  [ -n "$vn_tmp" ] || { vn_tmp=$(mktemp -d "${"$"}{TMPDIR:-/tmp}/${ROUND_TMP_PREFIX}XXXXXX") && trap 'rm -rf "$vn_tmp"' EXIT; } || return 1
  "$@" > "$vn_tmp/$vn_seg" 2>&1 &
  eval "vn_job_$vn_seg=$!"
  vn_stopping=""
}
# The exit status of segment $1's background step (0 if it has none).
job_wait() {
  eval "vn_j=\${vn_job_$1:-}"
  [ -n "$vn_j" ] || return 0
  eval "vn_job_$1=''"
  wait "$vn_j"
}
# After the round's deletion: the bridge is gone, or is deleted alone now (failing with the kernel's reason).
bridge_deleted() {
  if [ -n "$vn_bridges_job" ]; then
    wait "$vn_bridges_job"; vn_bridges_job=""
    vn_links=$(ip -o link show) || return 1
  fi
  case "$vn_links" in *": $1:"*|*": $1@"*) ip link del dev "$1";; esac
}
# Directories this script makes (mode, paths): no one has a file in them yet. Several in one mkdir, which
# names each one it made (-v): after a failure part way through, the undo removes those only (made_dir_undo).
# When it made them all (exit 0), its output is not searched for each one (a round's grows with its networks).
vn_made=""
make_dir() {
  vn_m=$1; shift
  if [ $# = 1 ]; then mkdir -m "$vn_m" "$1" && vn_made="$vn_made|$1|"; return; fi
  vn_out=$(LC_ALL=C mkdir -v -m "$vn_m" -- "$@"); vn_rc=$?
  if [ $vn_rc = 0 ]; then for vn_d; do vn_made="$vn_made|$vn_d|"; done; return 0; fi
  for vn_d; do case "$vn_out" in *"'$vn_d'"*) vn_made="$vn_made|$vn_d|";; esac; done
  return $vn_rc
}
made_dir_undo() { case "$vn_made" in *"|$1|"*) rmdir "$1";; esac; }
# A file that is not there yet is written in place, with no process at all: what reads virtnet's files runs
# after this script (a dnsmasq it starts, the boot restore) or skips a record it cannot parse (a probe, whose
# plan then meets a new token), and an undo removes it. One that is there is replaced whole, with one process
# (mv): the temporary name is the shell's own (the host lock keeps other applies out), and a 0644 file the
# shell makes needs no chmod under the script's umask 022. mktemp only if that name is taken.
write_file() {
  if [ ! -e "$1" ] && [ ! -L "$1" ]; then
    printf '%s' "$3" > "$1" && { [ "$2" = 0644 ] || chmod "$2" "$1"; } && return 0
    rm -f "$1"; return 1
  fi
  tmp="$1.vn$$"; vn_mode=$2
  if [ -e "$tmp" ] || [ -L "$tmp" ]; then tmp=$(mktemp "$1.XXXXXX") || return 1
  elif [ "$2" = 0644 ]; then vn_mode=""
  fi
  if printf '%s' "$3" > "$tmp" && { [ -z "$vn_mode" ] || chmod "$vn_mode" "$tmp"; } && mv -f -T "$tmp" "$1"; then return 0; fi
  rm -f "$tmp"; return 1
}
# A file nothing reads meanwhile: written in place when it is a plain file (never through a symbolic link).
write_file_unread() {
  if [ -f "$1" ] && [ ! -L "$1" ]; then
    printf '%s' "$3" > "$1" && { [ "$2" = 0644 ] || chmod "$2" "$1"; } && return 0
    return 1
  fi
  write_file "$@"
}
dnsmasq_pid() {
  { read -r p < "$pidfile"; } 2>/dev/null || return 1
  case "$p" in ""|*[!0-9]*) return 1;; esac
  case "$(readlink "/proc/$p/exe" 2>/dev/null)" in */dnsmasq|*"/dnsmasq (deleted)") ;; *) return 1;; esac
  tr '\0' '\n' < "/proc/$p/cmdline" | grep -qxF -- "--conf-file=$conf" || return 1
  echo "$p"
}
# Is the probe's dnsmasq (pid, start time) still running? Then it is still ours: the probe checked its binary
# and command line, which a running process keeps.
dnsmasq_same() {
  [ -n "$1" ] && proc_start "$1" && [ "$vn_state" != Z ] && [ "$vn_start" = "$2" ]
}
# $1 $2: the pid and start time the probe saw (optional).
dnsmasq_stop() {
  dnsmasq_stop_begin "$@" || return 1
  dnsmasq_stopped
}
# Only signals it: for a restart, whose dnsmasq_start waits (dnsmasq takes a few ms to exit, meanwhile the new
# config is written).
vn_stopping=""
dnsmasq_stop_begin() {
  if dnsmasq_same "${"$"}{1:-}" "${"$"}{2:-}"; then p=$1; else p=$(dnsmasq_pid) || { rm -f "$pidfile" "$pidfile.started"; return 0; }; fi
  kill -TERM "$p" || return 1
  vn_stopping=$p
}
# A delete's stop: signalled now, waited for with the round's other such stops at its end (dnsmasqs_gone), so
# that a round of deletes waits for dnsmasq's exit once, not once per network. Its pid file goes with the
# network's directories (a pid file left by a failed delete names a process that is gone: dnsmasq_same).
vn_gone=""
dnsmasq_stop_late() {
  dnsmasq_stop_begin "$@" || return 1
  vn_gone="$vn_gone $vn_stopping"; vn_stopping=""
}
# Until every process named is gone or a zombie. dnsmasq exits within milliseconds of SIGTERM: polled often
# (the shell's own read, no process), together, 2 s at most.
pids_gone() {
  vn_wait=$*; i=0
  while [ -n "$vn_wait" ] && [ $i -lt 400 ]; do
    vn_left=""
    for vn_g in $vn_wait; do proc_start "$vn_g" && [ "$vn_state" != Z ] && vn_left="$vn_left $vn_g"; done
    vn_wait=$vn_left; i=$((i+1))
    [ -z "$vn_wait" ] || sleep 0.005
  done
}
# Until every dnsmasq the round stopped late is gone; the host lock is still held, so no later apply meets one
# still bound to its addresses.
dnsmasqs_gone() {
  pids_gone $vn_gone
  vn_gone=""
}
# $1 "restart": keep the pid file and record, which the start replaces (dnsmasq unlinks its pid file and makes
# it anew): one process less per restart.
dnsmasq_stopped() {
  [ -n "$vn_stopping" ] || return 0
  pids_gone "$vn_stopping"
  vn_stopping=""
  [ "${"$"}{1:-}" = restart ] || rm -f "$pidfile" "$pidfile.started"
}
# The token the caller chose (so it can plan its next change without probing again), or the kernel's random
# uuid; skipped when the last network went.
generation_next() {
  [ -d ${q(STATE_DIR)} ] && [ ! -L ${q(STATE_DIR)} ] || return 0
  [ -n "$next_gen" ] || read -r next_gen < ${UUID} || return 1
  write_file ${q(GENERATION_FILE)} 0644 "$next_gen
"
}
# Starts this network's dnsmasq and records who it is (pid, start time) beside its pid file, for the probe.
dnsmasq_start() {
  dnsmasq_stopped restart
  dnsmasq --conf-file="$conf" || return 1
  { read -r vn_p < "$pidfile"; } 2>/dev/null && proc_start "$vn_p" || return 0
  { [ ! -L "$pidfile.started" ] || rm -f "$pidfile.started"; } && echo "$vn_p $vn_start" > "$pidfile.started" || :
}
dnsmasq_hup() {
  if dnsmasq_same "${"$"}{1:-}" "${"$"}{2:-}"; then p=$1; else p=$(dnsmasq_pid) || return 1; fi
  kill -HUP "$p"
}
`;
