// Renders plans into one shell script: host lock, a check that no other apply came in since the probe (the
// generation token), then each plan (a segment) in order, its actions in order, and on any failure the undo of
// every action of that segment already done, newest first; the segments after it do not run. A script that
// changed the host and leaves virtnet's state directory in place writes a new token. How each step runs comes
// from what it touches (action.ts): nothing else.
import { quote } from "shell-quote";
import { HOST_LOCK_PATH, NET_DEVICES_DIR, ROUND_TMP_PREFIX } from "../naming";
import { Action } from "./action";
import {
  DIR_MODE,
  EXIT_HOST_CHANGED,
  EXIT_LOCK_TIMEOUT,
  EXIT_STEP_FAILED,
  HELPERS,
  LOCK_WAIT_SECONDS,
  SEGMENT_MARKER,
  STEP_FAILED_MARKER,
  STOPPED_MARKER,
} from "./helpers";
import { PROBE_PRELUDE, PROBE_VARS, READ_GENERATION } from "./probe";

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
  /** The last network's delete, closing a round of deletes: its host teardown runs at the round's end. */
  closesRound?: boolean;
}

/** Runs after every segment's own steps: it waits for the round's bridges, or closes a round of deletes. */
function atRoundEnd(seg: Segment, a: Action): boolean {
  return !!a.atRoundEnd || (!!seg.closesRound && !!a.hostTeardown);
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
  // New directories and links of a round of several plans: made for all its segments at once (hoistedCreate).
  const hoisted = (seg: Segment, a: Action) =>
    staged(seg) && (!!a.createsLink || a.makesDir !== undefined) && !atRoundEnd(seg, a);
  const firstHoisting = segments.findIndex((seg) => seg.actions.some((a) => hoisted(seg, a)));
  const lateTrees = treesAtRoundEnd(segments, staged);
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
    finishFunction(segments, staged, lateTrees),
    `bridges_delete_start ${quote(segments.flatMap((seg) => seg.actions.flatMap((a) => (a.deletesBridge ? [a.deletesBridge] : []))))}`,
    'vn_hoisted=""; hoisted_undo() { :; }',
  ];
  for (const [i, seg] of segments.entries()) {
    const k = i + 1;
    // After the segments before it (one in order may make their parent directories).
    if (i === firstHoisting) lines.push(...hoistedCreate(segments, hoisted));
    lines.push(
      `vn_seg=${k}; echo ${quote([`${SEGMENT_MARKER}${k}`])} >&2`,
      `${PROBE_PRELUDE}; fail_after=\${${n}}; undo_stack=""`,
      `shift ${n}`,
      // Kept for what runs for this segment at the end of the round (its undo, its late steps).
      PROBE_VARS.map((v) => `vn_${k}_${v}=$${v}`).join("; "),
    );
    const steps = seg.actions.filter((x) => !atRoundEnd(seg, x));
    // What the round made for the segment belongs to it from its start.
    for (const a of steps)
      if (hoisted(seg, a) && seg.undo && a.undo)
        lines.push(`[ -z "$vn_hoisted" ] || undo_push ${quote([hoistedUndo(a)])}`);
    for (const [j, a] of steps.entries()) {
      const name = quote([a.name]);
      const injected = `rollback ${quote([`${a.name} (injected failure)`])}`;
      if (hoisted(seg, a)) {
        // Made at the round's start, or here when that was not possible.
        const undo = seg.undo && a.undo ? `; undo_push ${quote([hoistedUndo(a)])}` : "";
        lines.push(`[ -n "$vn_hoisted" ] || { { ${a.run} ; } || rollback ${name}${undo}; }`);
        lines.push(`[ "$fail_after" = ${name} ] && ${injected}`);
        continue;
      }
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
      if (
        a.makesDir !== undefined &&
        (steps[j - 1]?.makesDir !== undefined || steps[j + 1]?.makesDir !== undefined)
      ) {
        // Directories next to each other: one mkdir, their undos pushed before it (each removes its directory
        // only if this script made it), so a failure part way through is undone whole.
        if (steps[j - 1]?.makesDir !== undefined) continue;
        const run: Action[] = [];
        for (let i = j; i < steps.length && steps[i].makesDir !== undefined; i++) run.push(steps[i]);
        if (seg.undo)
          for (const r of run) lines.push(`undo_push ${quote([`made_dir_undo ${quote([r.makesDir!])}`])}`);
        lines.push(`{ make_dir ${DIR_MODE} ${quote(run.map((r) => r.makesDir!))} ; } || rollback ${name}`);
        for (const r of run)
          lines.push(
            `[ "$fail_after" = ${quote([r.name])} ] && rollback ${quote([`${r.name} (injected failure)`])}`,
          );
        continue;
      }
      if (lateTrees.get(k) === a) {
        // Tests of rollback: removed here, so that the failure comes after it.
        lines.push(`[ "$fail_after" = ${name} ] && { ${a.run}; ${injected}; }`);
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
    "dnsmasqs_gone",
    `generation_next || { echo ${quote([`${SEGMENT_MARKER}${segments.length}`])} >&2; rollback ${quote(["write the generation token"])}; }`,
    "exit $vn_rc",
  );
  return lines.join("\n") + "\n";
}

/** The undo of a step a round may make at its start: a directory goes only if this script made it. */
const hoistedUndo = (a: Action) =>
  a.makesDir !== undefined ? `made_dir_undo ${quote([a.makesDir])}` : a.undo!;

// A round of several plans makes its segments' new directories (Action.makesDir) in one mkdir and their new
// links (Action.createsLink) in one `ip -batch`, before its first segment that has any, when no such link is
// there yet. If either fails, what they made goes (a directory only if this script made it, a link only if
// none was there) and each segment makes its own in its place. hoisted_undo K: what was made for the segments
// after K, which did not run (a segment stopped the round).
function hoistedCreate(segments: Segment[], hoisted: (seg: Segment, a: Action) => boolean): string[] {
  const made = segments.map((seg) => seg.actions.filter((a) => hoisted(seg, a)));
  const all = made.flat();
  const dirs = all.flatMap((a) => (a.makesDir !== undefined ? [a.makesDir] : []));
  const links = all.flatMap((a) => (a.createsLink ? [a.createsLink] : []));
  const there = (l: string) =>
    `[ -e ${quote([`${NET_DEVICES_DIR}/${l}`])} ] || [ -e ${quote([`/sys/class/net/${l}`])} ]`;
  const undoAll = (actions: Action[]) =>
    [...actions]
      .reverse()
      .map((a) =>
        a.makesDir !== undefined
          ? `made_dir_undo ${quote([a.makesDir])}`
          : `ip link del dev ${quote([a.createsLink!.link])}`,
      )
      .join("; ");
  const out = ["vn_made_before=$vn_made; vn_hoisted=1"];
  if (dirs.length) out.push(`make_dir ${DIR_MODE} ${quote(dirs)} || vn_hoisted=""`);
  if (links.length)
    out.push(
      `if [ -z "$vn_hoisted" ] || ${links.map((c) => there(c.link)).join(" || ")}; then vn_hoisted=""`,
      `elif ! printf '%s\\n' ${quote(links.flatMap((c) => c.lines))} | ip -batch -; then`,
      `  vn_hoisted=""; ${links.map((c) => `{ ! { ${there(c.link)}; } || ip link del dev ${quote([c.link])}; }`).join("; ")}`,
      "fi",
    );
  if (dirs.length)
    out.push(
      `[ -n "$vn_hoisted" ] || { ${[...dirs]
        .reverse()
        .map((d) => `made_dir_undo ${quote([d])}`)
        .join("; ")}; vn_made=$vn_made_before; }`,
    );
  out.push(
    "hoisted_undo() {",
    '  [ -n "$vn_hoisted" ] || return 0',
    ...made.flatMap((actions, i) =>
      actions.length ? [`  [ "$1" -lt ${i + 1} ] && { ${undoAll(actions)}; }`] : [],
    ),
    "  :",
    "}",
  );
  return out;
}

/**
 * A delete's directories (Action.removesTrees) that its round removes at its end, with the other deletes', by
 * segment number: only in a staged segment whose host-wide teardown, if any, also waits for the end, and whose
 * paths no other segment of the round names (a network deleted and made again in one round keeps its order).
 */
function treesAtRoundEnd(segments: Segment[], staged: (seg: Segment) => boolean): Map<number, Action> {
  const late = new Map<number, Action>();
  for (const [i, seg] of segments.entries()) {
    const a = seg.actions.find((x) => x.removesTrees);
    if (!a || !staged(seg) || seg.actions.some((x) => x.hostTeardown && !atRoundEnd(seg, x))) continue;
    const elsewhere = segments.some(
      (other, j) => j !== i && other.actions.some((x) => a.removesTrees!.some((d) => x.run.includes(d))),
    );
    if (!elsewhere) late.set(i + 1, a);
  }
  return late;
}

// finish_segments K: for segments 1..K, their staged nft transactions in one (when that one is refused, each
// alone, a refused one failing and undoing its segment), then their end-of-round steps, each in its segment's
// part of stderr; between the two, the deletes' directories in one rm (when that fails, each segment's alone,
// a failure named in its part). All run; returns 70 if any failed.
function finishFunction(
  segments: Segment[],
  staged: (seg: Segment) => boolean,
  lateTrees: Map<number, Action>,
): string {
  const body = ["finish_segments() {", "  vn_fail=0"];
  const transactions = segments.flatMap((seg, i) => {
    const nft = staged(seg) ? seg.actions.filter((a) => a.nft !== undefined && !atRoundEnd(seg, a)) : [];
    return nft.length ? [{ k: i + 1, name: nft[nft.length - 1].name }] : [];
  });
  // The segment's own variables back, and its part of stderr.
  const marker = (k: number) =>
    `vn_seg=${k}; ${PROBE_VARS.map((v) => `${v}=$vn_${k}_${v}`).join("; ")}; echo ${quote([`${SEGMENT_MARKER}${k}`])} >&2`;
  const failed = (name: string) =>
    `echo ${quote([`${STEP_FAILED_MARKER}${name}`])} >&2; vn_fail=${EXIT_STEP_FAILED}`;
  const background = segments.flatMap((seg, i) => {
    const bg = staged(seg) ? seg.actions.filter((a) => a.background && !atRoundEnd(seg, a)) : [];
    return bg.length ? [{ k: i + 1, name: bg[bg.length - 1].name }] : [];
  });
  const waitBackground = background.map(
    ({ k }) => `  vn_bgok_${k}=1; [ "$1" -ge ${k} ] && { job_wait ${k} || vn_bgok_${k}=""; }`,
  );
  if (transactions.length) {
    const alone = transactions.map(
      ({ k, name }) =>
        `  [ "$1" -ge ${k} ] && [ -n "$vn_nft_${k}" ] && { ${marker(k)}; printf '%s' "$vn_nft_${k}" | nft -f - || { ${failed(name)}; eval "$vn_undo_${k}"; vn_undo_${k}=""; }; }`,
    );
    // Every background step is waited for before an undo (none may still be starting when one runs). The
    // transaction of all, which undoes nothing when refused, goes in while they still run (dnsmasqs starting).
    if (transactions.length === 1) body.push(...waitBackground, ...alone);
    else
      body.push(
        '  vn_any=""',
        ...transactions.map(({ k }) => `  [ "$1" -ge ${k} ] && [ -n "$vn_nft_${k}" ] && vn_any=1`),
        // Printed one after the other into nft, not joined first: the shell copies a joined text whole at each
        // transaction added, and a round's transactions grow with its networks.
        `  vn_all_ok=""; [ -n "$vn_any" ] && { ${transactions.map(({ k }) => `{ [ "$1" -lt ${k} ] || printf '%s' "$vn_nft_${k}"; }`).join("; ")}; } | nft -f - 2>/dev/null && vn_all_ok=1`,
        ...waitBackground,
        `  if [ -n "$vn_any" ] && [ -z "$vn_all_ok" ]; then`,
        ...alone.map((l) => `  ${l}`),
        "  fi",
      );
  } else body.push(...waitBackground);
  for (const { k, name } of background)
    body.push(
      `  [ -z "$vn_bgok_${k}" ] && { ${marker(k)}; cat "$vn_tmp/${k}" >&2; ${failed(name)}; eval "$vn_undo_${k}"; }`,
    );
  if (lateTrees.size) {
    const trees = [...lateTrees].map(([k, a]) => ({
      k,
      a,
      guard: `[ "$vn_k" -ge ${k} ]`,
    }));
    body.push(
      "  vn_k=$1; set --",
      ...trees.map(({ guard, a }) => `  ${guard} && set -- "$@" ${quote(a.removesTrees!)}`),
      '  if [ $# -gt 0 ] && ! rm -rf -- "$@" 2>/dev/null; then',
      ...trees.map(
        ({ k, a, guard }) => `    ${guard} && { ${marker(k)}; ${a.run} || { ${failed(a.name)}; }; }`,
      ),
      "  fi",
      '  set -- "$vn_k"',
    );
  }
  for (const [i, seg] of segments.entries()) {
    const k = i + 1;
    const late = seg.actions.filter((a) => atRoundEnd(seg, a));
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
