// Renders a plan into one shell script: host lock, a check that the host did not change since the probe,
// the actions in order, and on any failure the undo of every action already done, newest first.
import { quote } from "shell-quote";
import { HOST_LOCK_PATH } from "../naming";
import { PROBE_FUNCTION, PROBE_PRELUDE, PROBE_VARS } from "./observe";
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
write_file() {
  tmp=$(mktemp "$1.XXXXXX") || return 1
  if chmod "$2" "$tmp" && printf '%s' "$3" > "$tmp" && mv -f -T "$tmp" "$1"; then return 0; fi
  rm -f "$tmp"; return 1
}
dnsmasq_pid() {
  p=$(cat "$pidfile" 2>/dev/null) || return 1
  case "$p" in ""|*[!0-9]*) return 1;; esac
  case "$(readlink "/proc/$p/exe" 2>/dev/null)" in */dnsmasq|*"/dnsmasq (deleted)") ;; *) return 1;; esac
  tr '\0' '\n' < "/proc/$p/cmdline" | grep -qxF -- "--conf-file=$conf" || return 1
  echo "$p"
}
dnsmasq_stop() {
  p=$(dnsmasq_pid) || { rm -f "$pidfile"; return 0; }
  kill -TERM "$p" || return 1
  i=0
  while [ -d "/proc/$p" ] && [ "$(cut -d' ' -f3 "/proc/$p/stat" 2>/dev/null)" != Z ] && [ $i -lt 100 ]; do
    sleep 0.02; i=$((i+1))
  done
  rm -f "$pidfile"
}
dnsmasq_start() { dnsmasq --conf-file="$conf"; }
dnsmasq_hup() { p=$(dnsmasq_pid) && kill -HUP "$p"; }
`;

/**
 * Positional arguments: the probe's six variables, then the expected probe hash, then the name of an action
 * after which to fail on purpose (tests of rollback; empty otherwise).
 */
export function renderApplyScript(actions: Action[], undoOnFailure: boolean): string {
  const n = PROBE_VARS.length;
  const lines = [
    "set -u",
    "trap '' HUP PIPE", // a dropped SSH connection must not stop the script half way
    PROBE_PRELUDE,
    `expected=$${n + 1}; fail_after=$${n + 2}`,
    PROBE_FUNCTION,
    HELPERS,
    `exec 9<${quote([HOST_LOCK_PATH])} || exit 1`,
    `flock -w ${LOCK_WAIT_SECONDS} 9 || { echo "timed out after ${LOCK_WAIT_SECONDS} s waiting for ${HOST_LOCK_PATH}" >&2; exit ${EXIT_LOCK_TIMEOUT}; }`,
    `[ "$(probe | sha256sum | cut -c1-64)" = "$expected" ] || exit ${EXIT_HOST_CHANGED}`,
  ];
  for (const a of actions) {
    const name = quote([a.name]);
    lines.push(`{ ${a.run} ; } || rollback ${name}`);
    if (undoOnFailure && a.undo) lines.push(`undo_push ${quote([a.undo])}`);
    lines.push(`[ "$fail_after" = ${name} ] && rollback ${quote([`${a.name} (injected failure)`])}`);
  }
  lines.push("exit 0");
  return lines.join("\n") + "\n";
}
