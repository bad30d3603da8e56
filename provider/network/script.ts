// Renders plans into one shell script: host lock, a check that no other apply came in since the probe (the
// generation token), then each plan (a segment) in order, its actions in order, and on any failure the undo of
// every action of that segment already done, newest first; the segments after it do not run. A script that
// changed the host and leaves virtnet's state directory in place writes a new token.
import { quote } from "shell-quote";
import { GENERATION_FILE, HOST_LOCK_PATH, ROUND_TMP_PREFIX, STATE_DIR, SYSCTL, sysctlPath } from "../naming";
import { PROBE_PRELUDE, PROBE_VARS, PROC_START, READ_GENERATION } from "./observe";
import { Action } from "./plan";

export const EXIT_HOST_CHANGED = 75;
export const EXIT_LOCK_TIMEOUT = 73;
export const EXIT_STEP_FAILED = 70;
export const STEP_FAILED_MARKER = "virtnet-step-failed: ";
/** On stderr before a segment's own output; a failure marker belongs to the segment named last. */
export const SEGMENT_MARKER = "virtnet-segment: ";
/** On stderr when a segment failed and the ones after it did not run. */
export const STOPPED_MARKER = "virtnet-round-stopped: ";
export const LOCK_WAIT_SECONDS = 60;

/** A path of naming.ts in shell text. */
const q = (path: string) => quote([path]);
const UUID = q(sysctlPath(SYSCTL.randomUuid));

// Helpers the actions call. $conf and $pidfile come from the probe's variables.
const HELPERS =
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
  wait
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
# A directory this script makes (mode, path): no one has a file in it yet.
vn_made=""
make_dir() { mkdir -m "$1" "$2" && vn_made="$vn_made|$2|"; }
# One process (mv) per file: the temporary name is the shell's own (the host lock keeps other applies out),
# and a 0644 file the shell makes needs no chmod under the script's umask 022. mktemp only if that name is taken.
# A new file in a directory of make_dir's is written in place, with no process at all: nothing reads it before
# this script ends, a probe skips a record it cannot parse, and an undo removes it.
write_file() {
  case "$vn_made" in *"|${"$"}{1%/*}|"*)
    if [ ! -e "$1" ] && [ ! -L "$1" ]; then
      printf '%s' "$3" > "$1" && { [ "$2" = 0644 ] || chmod "$2" "$1"; } && return 0
      rm -f "$1"; return 1
    fi;;
  esac
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
# $1 "restart": keep the pid file and record, which the start replaces (dnsmasq unlinks its pid file and makes
# it anew): one process less per restart.
dnsmasq_stopped() {
  [ -n "$vn_stopping" ] || return 0
  # dnsmasq exits within milliseconds of SIGTERM: poll often (the shell's own read, no process), 2 s at most.
  i=0
  while proc_start "$vn_stopping" && [ "$vn_state" != Z ] && [ $i -lt 400 ]; do
    sleep 0.005; i=$((i+1))
  done
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

/**
 * Runs the script it reads from stdin, with this command's arguments: a round's script can be larger than one
 * command line allows (128 KiB). Everything the script starts then finds stdin at its end.
 */
export const RUN_STDIN_SCRIPT = 'vn_script=$(cat) || exit 1; eval "$vn_script"';

export interface Segment {
  actions: Action[];
  /** Undo the segment's done actions when one of its actions fails. */
  undo: boolean;
  /**
   * Run every step in its place, as in a script of its own (no nft transaction or dnsmasq start kept for the
   * end): for a plan with host-wide steps, which may have to follow its rules (forwarding after the firewall).
   */
  inOrder?: boolean;
}

const segmentArgCount = PROBE_VARS.length + 1; // the probe's variables, then fail_after

/**
 * One script for several plans on one host. Positional arguments: the generation token the probe saw, the
 * token to leave (empty: a random one), then per segment the probe's variables of its network and the name of
 * an action after which to fail on purpose (tests of rollback; empty otherwise).
 *
 * Exit 0: every segment applied. Exit 70 with "virtnet-round-stopped: K" on stderr: segment K failed (undone
 * when it asks for undo) and the segments after it did not run. Exit 70 without it: every segment ran, and a
 * step run at the end of the round failed. Each failure is a STEP_FAILED_MARKER line in its segment's part of
 * stderr (after SEGMENT_MARKER K). Exit 75: the token did not match, nothing ran.
 */
export function renderRoundScript(segments: Segment[]): string {
  const n = segmentArgCount;
  // With several plans, their nft transactions become one at the end of the script (each nft run reads the
  // table from the kernel: ~15 ms). A plan alone keeps its order: its host-wide steps may follow its rules.
  const stage = segments.length > 1;
  const staged = (seg: Segment) => stage && !seg.inOrder;
  const lines = [
    "set -u",
    "umask 022",
    "trap '' HUP PIPE", // a dropped SSH connection must not stop the script half way
    "expected=$1; next_gen=$2; shift 2",
    PROBE_PRELUDE, // the first segment's variables, until each segment sets its own
    HELPERS,
    `exec 9<${quote([HOST_LOCK_PATH])} || exit 1`,
    `flock -w ${LOCK_WAIT_SECONDS} 9 || { echo "timed out after ${LOCK_WAIT_SECONDS} s waiting for ${HOST_LOCK_PATH}" >&2; exit ${EXIT_LOCK_TIMEOUT}; }`,
    READ_GENERATION,
    `[ "$vn_gen" = "$expected" ] || exit ${EXIT_HOST_CHANGED}`,
    // Under the lock no other round runs: a round directory left now is a killed script's (rm only if one is).
    `for vn_d in "\${TMPDIR:-/tmp}"/${ROUND_TMP_PREFIX}*; do [ ! -d "$vn_d" ] || rm -rf "\${TMPDIR:-/tmp}"/${ROUND_TMP_PREFIX}*; break; done`,
    'vn_finished=""; vn_bridges_job=""; vn_links=""',
    segments.map((_, i) => `vn_nft_${i + 1}=""; vn_undo_${i + 1}=""`).join("; "),
    finishFunction(segments, staged),
    `bridges_delete_start ${quote(segments.flatMap((seg) => seg.actions.flatMap((a) => (a.deletesBridge ? [a.deletesBridge] : []))))}`,
  ];
  for (const [i, seg] of segments.entries()) {
    const k = i + 1;
    lines.push(
      `vn_seg=${k}; echo ${quote([`${SEGMENT_MARKER}${k}`])} >&2`,
      `${PROBE_PRELUDE}; fail_after=\${${n}}; undo_stack=""`,
      `shift ${n}`,
      // Kept for what runs for this segment at the end of the round (its undo, its late steps).
      PROBE_VARS.map((v) => `vn_${k}_${v}=$${v}`).join("; "),
    );
    const steps = seg.actions.filter((x) => !x.atRoundEnd);
    for (const [j, a] of steps.entries()) {
      const name = quote([a.name]);
      const injected = `rollback ${quote([`${a.name} (injected failure)`])}`;
      if (
        a.removes !== undefined &&
        (steps[j - 1]?.removes !== undefined || steps[j + 1]?.removes !== undefined)
      ) {
        // Removals next to each other: one rm, their undos pushed before it (writing a file back that is still
        // there changes nothing), so a failure part way through is undone whole.
        if (steps[j - 1]?.removes !== undefined) continue;
        const run: Action[] = [];
        for (let i = j; i < steps.length && steps[i].removes !== undefined; i++) run.push(steps[i]);
        for (const r of run) if (seg.undo && r.undo) lines.push(`undo_push ${quote([r.undo])}`);
        lines.push(`{ rm -f -- ${quote(run.map((r) => r.removes!))} ; } || rollback ${name}`);
        for (const r of run)
          lines.push(
            `[ "$fail_after" = ${quote([r.name])} ] && rollback ${quote([`${r.name} (injected failure)`])}`,
          );
        continue;
      }
      if (staged(seg) && a.background) {
        lines.push(`{ in_background ${a.run} ; } || rollback ${name}`);
        if (seg.undo && a.undo) lines.push(`undo_push ${quote([a.undo])}`);
        lines.push(`[ "$fail_after" = ${name} ] && ${injected}`);
        continue;
      }
      if (staged(seg) && a.nft !== undefined) {
        lines.push(`vn_nft_${k}="$vn_nft_${k}"${quote([a.nft])}`);
        if (seg.undo && a.undo) lines.push(`undo_push ${quote([a.undo])}`);
        // Tests of rollback: the transaction goes in first, so that the undo has something to undo.
        lines.push(
          `[ "$fail_after" = ${name} ] && { printf '%s' "$vn_nft_${k}" | nft -f -; vn_nft_${k}=""; ${injected}; }`,
        );
        continue;
      }
      lines.push(`{ ${a.run} ; } || rollback ${name}`);
      if (seg.undo && a.undo) lines.push(`undo_push ${quote([a.undo])}`);
      lines.push(`[ "$fail_after" = ${name} ] && ${injected}`);
    }
    lines.push(`vn_undo_${k}=$undo_stack`);
  }
  lines.push(
    `vn_rc=0; finish_segments ${segments.length} || vn_rc=$?`,
    `vn_seg=${segments.length}; vn_finished=1`,
    `generation_next || { echo ${quote([`${SEGMENT_MARKER}${segments.length}`])} >&2; rollback ${quote(["write the generation token"])}; }`,
    "exit $vn_rc",
  );
  return lines.join("\n") + "\n";
}

// finish_segments K: for segments 1..K, their staged nft transactions in one (when that one is refused, each
// alone, a refused one failing and undoing its segment), then their end-of-round steps, each in its segment's
// part of stderr. All run; returns 70 if any failed.
function finishFunction(segments: Segment[], staged: (seg: Segment) => boolean): string {
  const body = ["finish_segments() {", "  vn_fail=0"];
  const transactions = segments.flatMap((seg, i) => {
    const nft = staged(seg) ? seg.actions.filter((a) => a.nft !== undefined && !a.atRoundEnd) : [];
    return nft.length ? [{ k: i + 1, name: nft[nft.length - 1].name }] : [];
  });
  // The segment's own variables back, and its part of stderr.
  const marker = (k: number) =>
    `vn_seg=${k}; ${PROBE_VARS.map((v) => `${v}=$vn_${k}_${v}`).join("; ")}; echo ${quote([`${SEGMENT_MARKER}${k}`])} >&2`;
  const failed = (name: string) =>
    `echo ${quote([`${STEP_FAILED_MARKER}${name}`])} >&2; vn_fail=${EXIT_STEP_FAILED}`;
  const background = segments.flatMap((seg, i) => {
    const bg = staged(seg) ? seg.actions.filter((a) => a.background && !a.atRoundEnd) : [];
    return bg.length ? [{ k: i + 1, name: bg[bg.length - 1].name }] : [];
  });
  // Every background step first: none of them may still be starting when an undo runs.
  for (const { k } of background)
    body.push(`  vn_bgok_${k}=1; [ "$1" -ge ${k} ] && { job_wait ${k} || vn_bgok_${k}=""; }`);
  if (transactions.length) {
    const alone = transactions.map(
      ({ k, name }) =>
        `  [ "$1" -ge ${k} ] && [ -n "$vn_nft_${k}" ] && { ${marker(k)}; printf '%s' "$vn_nft_${k}" | nft -f - || { ${failed(name)}; eval "$vn_undo_${k}"; vn_undo_${k}=""; }; }`,
    );
    if (transactions.length === 1) body.push(...alone);
    else
      body.push(
        '  vn_all=""',
        ...transactions.map(({ k }) => `  [ "$1" -ge ${k} ] && vn_all="$vn_all$vn_nft_${k}"`),
        `  if [ -n "$vn_all" ] && ! printf '%s' "$vn_all" | nft -f - 2>/dev/null; then`,
        ...alone.map((l) => `  ${l}`),
        "  fi",
      );
  }
  for (const { k, name } of background)
    body.push(
      `  [ -z "$vn_bgok_${k}" ] && { ${marker(k)}; cat "$vn_tmp/${k}" >&2; ${failed(name)}; eval "$vn_undo_${k}"; }`,
    );
  for (const [i, seg] of segments.entries()) {
    const k = i + 1;
    const late = seg.actions.filter((a) => a.atRoundEnd);
    if (!late.length) continue;
    const steps = late.map((a) => `{ ${a.run} ; } || { ${failed(a.name)}; }`).join("; ");
    body.push(`  [ "$1" -ge ${k} ] && { ${marker(k)}; ${steps}; }`);
  }
  body.push("  return $vn_fail", "}");
  return body.join("\n");
}

/**
 * One plan's script (a round of one). Positional arguments: the probe's variables, then the generation token
 * the probe saw, then the name of an action after which to fail on purpose (tests of rollback; empty
 * otherwise), then optionally the token to leave.
 */
export function renderApplyScript(actions: Action[], undoOnFailure: boolean): string {
  const n = PROBE_VARS.length;
  const vars = PROBE_VARS.map((_, i) => `"\${${i + 1}}"`).join(" ");
  const reorder = `set -- "\${${n + 1}}" "\${${n + 3}:-}" ${vars} "\${${n + 2}}"`;
  return `${reorder}\n${renderRoundScript([{ actions, undo: undoOnFailure }])}`;
}

export interface RoundOutcome {
  /** The segment whose output came last: the one that was running if the script was cut short. */
  last: number;
  /** The segment (1-based) that failed and stopped the script; the ones after it did not run. */
  stoppedAt?: number;
  /** Failed segments (1-based) and the step each failed at. */
  failed: Map<number, string>;
  /** Each segment's part of stderr, markers removed. */
  stderr: Map<number, string>;
}

/** Reads a round script's stderr; undefined when it holds no segment marker (it failed before any segment). */
export function parseRoundOutput(stderr: string): RoundOutcome | undefined {
  const out: RoundOutcome = { last: 0, failed: new Map(), stderr: new Map() };
  let seg = 0;
  for (const line of stderr.split("\n")) {
    if (line.startsWith(SEGMENT_MARKER)) out.last = seg = Number(line.slice(SEGMENT_MARKER.length));
    else if (line.startsWith(STOPPED_MARKER)) out.stoppedAt = Number(line.slice(STOPPED_MARKER.length));
    else if (seg && line.startsWith(STEP_FAILED_MARKER))
      out.failed.set(seg, line.slice(STEP_FAILED_MARKER.length));
    else if (seg) out.stderr.set(seg, out.stderr.has(seg) ? `${out.stderr.get(seg)}\n${line}` : line);
  }
  return seg ? out : undefined;
}
