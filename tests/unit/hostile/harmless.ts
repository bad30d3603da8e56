// Proof that a rendered artifact is harmless: the real nft and dnsmasq parse it (in a private network
// namespace, so nothing on this machine changes), and it holds exactly the lines virtnet meant to write.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface ToolResult {
  ok: boolean;
  output: string;
}

function tmpFile(name: string, content: string): { file: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hz-hostile-"));
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return { file, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** `nft -c -f` (check only) in a new, empty network namespace. */
export function nftCheck(ruleset: string): ToolResult {
  const { file, cleanup } = tmpFile("ruleset.nft", ruleset);
  try {
    const r = spawnSync("unshare", ["--net", "nft", "-c", "-f", file], { encoding: "utf8" });
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
  } finally {
    cleanup();
  }
}

/** `dnsmasq --test` on a configuration file (syntax check only; it starts nothing). */
export function dnsmasqTest(conf: string): ToolResult {
  const { file, cleanup } = tmpFile("dnsmasq.conf", conf);
  try {
    const r = spawnSync("dnsmasq", ["--test", `--conf-file=${file}`], { encoding: "utf8" });
    return { ok: r.status === 0 && /syntax check OK/.test(r.stderr), output: `${r.stdout}${r.stderr}` };
  } finally {
    cleanup();
  }
}

/** The option names of a dnsmasq configuration, one per non-comment line ("server", "txt-record", ...). */
export function dnsmasqOptions(conf: string): string[] {
  return conf
    .split("\n")
    .filter((l) => l.trim() !== "" && !l.startsWith("#"))
    .map((l) => l.split("=")[0]);
}
