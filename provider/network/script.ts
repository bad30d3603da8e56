// Renders a plan into one shell script: host lock, a check that no other apply came in since the probe (the
// generation token), the actions in order, and on any failure the undo of every action already done, newest
// first. A successful script that leaves virtnet's state directory in place writes a new token.
import { quote } from "shell-quote";
import { HOST_LOCK_PATH } from "../naming";
import { PROBE_PRELUDE, PROBE_VARS, READ_GENERATION } from "./observe";
import { Action } from "./plan";

export const EXIT_HOST_CHANGED = 75;
export const EXIT_LOCK_TIMEOUT = 73;
export const EXIT_STEP_FAILED = 70;
export const STEP_FAILED_MARKER = "virtnet-step-failed: ";
export const LOCK_WAIT_SECONDS = 60;

// Helpers the actions call. $conf and $pidfile come from the probe's variables.
const HELPERS = String.raw`
undo_stack=""
undo_push() { undo_stack="$1
$undo_stack"; }
rollback() {
  echo "${STEP_FAILED_MARKER}$1" >&2
  eval "$undo_stack"
  exit ${EXIT_STEP_FAILED}
}
# One process (mv) per file: the temporary name is the shell's own (the host lock keeps other applies out),
# and a 0644 file the shell makes needs no chmod under the script's umask 022. mktemp only if that name is taken.
write_file() {
  tmp="$1.vn$$"; vn_mode=$2
  if [ -e "$tmp" ] || [ -L "$tmp" ]; then tmp=$(mktemp "$1.XXXXXX") || return 1
  elif [ "$2" = 0644 ]; then vn_mode=""
  fi
  if printf '%s' "$3" > "$tmp" && { [ -z "$vn_mode" ] || chmod "$vn_mode" "$tmp"; } && mv -f -T "$tmp" "$1"; then return 0; fi
  rm -f "$tmp"; return 1
}
dnsmasq_pid() {
  { read -r p < "$pidfile"; } 2>/dev/null || return 1
  case "$p" in ""|*[!0-9]*) return 1;; esac
  case "$(readlink "/proc/$p/exe" 2>/dev/null)" in */dnsmasq|*"/dnsmasq (deleted)") ;; *) return 1;; esac
  tr '\0' '\n' < "/proc/$p/cmdline" | grep -qxF -- "--conf-file=$conf" || return 1
  echo "$p"
}
dnsmasq_stop() {
  p=$(dnsmasq_pid) || { rm -f "$pidfile"; return 0; }
  kill -TERM "$p" || return 1
  # dnsmasq exits within milliseconds of SIGTERM: poll often (the shell's own read, no process), 2 s at most.
  i=0
  while { read -r vn_a vn_b vn_state vn_rest < "/proc/$p/stat"; } 2>/dev/null && [ "$vn_state" != Z ] && [ $i -lt 400 ]; do
    sleep 0.005; i=$((i+1))
  done
  rm -f "$pidfile"
}
# The token the caller chose (so it can plan its next change without probing again), or the kernel's random
# uuid; skipped when the last network went.
generation_next() {
  [ -d "$stateroot" ] && [ ! -L "$stateroot" ] || return 0
  [ -n "$next_gen" ] || read -r next_gen < /proc/sys/kernel/random/uuid || return 1
  write_file "$stateroot/generation" 0644 "$next_gen
"
}
dnsmasq_start() { dnsmasq --conf-file="$conf"; }
dnsmasq_hup() { p=$(dnsmasq_pid) && kill -HUP "$p"; }
`;

/**
 * Positional arguments: the probe's variables, then the generation token the probe saw, then the name of an action
 * after which to fail on purpose (tests of rollback; empty otherwise), then optionally the token to leave.
 */
export function renderApplyScript(actions: Action[], undoOnFailure: boolean): string {
  const n = PROBE_VARS.length;
  const lines = [
    "set -u",
    "umask 022",
    "trap '' HUP PIPE", // a dropped SSH connection must not stop the script half way
    PROBE_PRELUDE,
    `expected=\${${n + 1}}; fail_after=\${${n + 2}}; next_gen=\${${n + 3}:-}`,
    HELPERS,
    `exec 9<${quote([HOST_LOCK_PATH])} || exit 1`,
    `flock -w ${LOCK_WAIT_SECONDS} 9 || { echo "timed out after ${LOCK_WAIT_SECONDS} s waiting for ${HOST_LOCK_PATH}" >&2; exit ${EXIT_LOCK_TIMEOUT}; }`,
    READ_GENERATION,
    `[ "$vn_gen" = "$expected" ] || exit ${EXIT_HOST_CHANGED}`,
  ];
  for (const a of actions) {
    const name = quote([a.name]);
    lines.push(`{ ${a.run} ; } || rollback ${name}`);
    if (undoOnFailure && a.undo) lines.push(`undo_push ${quote([a.undo])}`);
    lines.push(`[ "$fail_after" = ${name} ] && rollback ${quote([`${a.name} (injected failure)`])}`);
  }
  lines.push(`generation_next || rollback ${quote(["write the generation token"])}`, "exit 0");
  return lines.join("\n") + "\n";
}
