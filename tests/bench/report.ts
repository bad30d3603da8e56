// The bench's one table: figure, target, ratio and verdict side by side, with a one-line note per row.

export type Verdict = "PASS" | "MISS" | "ERROR" | "";

export interface Row {
  what: string;
  figure: string;
  /** Engine runs: Pulumi's fixed part of `figure` (program to first resource + plugin start), and the
   * provider's part (its first create/delete request to its last response). */
  fixed?: string;
  provider?: string;
  target?: string;
  ratio?: string;
  verdict?: Verdict;
  note: string;
}

export function secs(ms: number | undefined): string {
  if (ms === undefined || Number.isNaN(ms)) return "n/a";
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 1000).toFixed(2)} s`;
}

export function msStr(ms: number | undefined): string {
  if (ms === undefined || Number.isNaN(ms)) return "n/a";
  return ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`;
}

export function ratioStr(r: number | undefined): string {
  if (r === undefined || Number.isNaN(r) || !Number.isFinite(r)) return "n/a";
  return `${r.toFixed(2)}x`;
}

/** PASS when `ok`, MISS otherwise; "" when the figure is missing. */
export function verdict(ok: boolean | undefined): Verdict {
  return ok === undefined ? "" : ok ? "PASS" : "MISS";
}

export function renderTable(rows: Row[]): string {
  const head = ["#", "what", "figure", "pulumi fixed", "provider", "target", "ratio", "result", "note"];
  const cells = rows.map((r, i) => [
    String(i + 1),
    r.what,
    r.figure,
    r.fixed ?? "",
    r.provider ?? "",
    r.target ?? "",
    r.ratio ?? "",
    r.verdict ?? "",
    r.note,
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...cells.map((row) => row[c].length)));
  // The note column is last and is not padded.
  const line = (cols: string[]) =>
    cols
      .map((s, c) => (c === cols.length - 1 ? s : s.padEnd(widths[c])))
      .join(" | ")
      .trimEnd();
  const sep = widths.map((w, c) => "-".repeat(c === widths.length - 1 ? Math.min(w, 40) : w)).join("-+-");
  return [line(head), sep, ...cells.map(line)].join("\n");
}
