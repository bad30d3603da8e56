// What both transports share: the remote command line (quoted pieces only), sudo, and the file scripts.
import { posix } from "path";
import { quote } from "shell-quote";
import { Host, HostCommandError, RunOptions, RunResult, tail, WriteFileOptions } from "./host";
import { SudoPasswordError } from "./errors";

/** $0 of every script: shows in `ps` and in the shell's own error messages. */
export const SCRIPT_NAME = "virtnet";

/**
 * Linux limits one argument to 128 KiB (MAX_ARG_STRLEN), and sshd hands the whole command line to the
 * login shell as one argument. Larger data belongs on stdin.
 */
export const MAX_COMMAND_BYTES = 128 * 1024 - 1;

/**
 * The command line a login shell runs: `[sudo -n --] /bin/sh -c <script> virtnet <args...>`, every piece
 * quoted by shell-quote, so that the script sees each arg byte for byte as "$1", "$2"...
 */
export function buildCommand(script: string, args: readonly string[] = [], sudo = false): string {
  for (const [i, s] of [script, ...args].entries()) {
    if (typeof s !== "string")
      throw new TypeError(`${i === 0 ? "script" : `args[${i - 1}]`} must be a string`);
    if (s.includes("\0"))
      throw new TypeError(
        `${i === 0 ? "script" : `args[${i - 1}]`} contains a NUL byte, which no shell can pass`,
      );
  }
  const argv = [...(sudo ? ["sudo", "-n", "--"] : []), "/bin/sh", "-c", script, SCRIPT_NAME, ...args];
  return quote(argv);
}

/** The first line of a script, for error messages when no step is given. */
export function stepOf(script: string, step?: string): string {
  if (step) return step;
  const first = script.trim().split("\n")[0]?.trim() ?? "";
  return first.length > 80 ? `${first.slice(0, 77)}...` : first || "script";
}

export interface RawResult {
  code: number;
  stdout: Buffer;
  stderr: Buffer;
}

const EXIT_NO_FILE = 44;

// Reads $1; exit 44 when it does not exist (a dangling symlink counts as missing).
const READ_SCRIPT = `[ -e "$1" ] || exit ${EXIT_NO_FILE}
exec cat -- "$1"`;

// Atomic write of stdin to $1: temp file in the same directory ($2), mode ($3) set before any data, fsync,
// rename over $1. `mv -T` replaces whatever is at $1 (a symlink too) and never follows it.
const WRITE_SCRIPT = `set -eu
p=$1 d=$2 m=$3
if [ ! -d "$d" ]; then echo "directory $d does not exist (create it first)" >&2; exit 3; fi
if [ -d "$p" ] && [ ! -L "$p" ]; then echo "$p is a directory" >&2; exit 3; fi
t=$(mktemp "$d/.virtnet.XXXXXXXXXX")
trap 'rm -f -- "$t"' EXIT
chmod "$m" "$t"
cat > "$t"
sync -- "$t" 2>/dev/null || sync
mv -f -T -- "$t" "$p"
trap - EXIT
sync -- "$d" 2>/dev/null || true`;

function checkPath(label: string, path: string, op: string): void {
  if (typeof path !== "string" || !path.startsWith("/") || path.includes("\0") || path.endsWith("/"))
    throw new HostCommandError(label, `${op} file`, -1, "the path must be absolute and name a file");
}

/**
 * Host on top of one primitive, `exec(commandLine, stdin)`: quoting, sudo, error classification and the
 * file operations are the same whichever way the command line reaches a login shell.
 */
export abstract class CommandHost implements Host {
  abstract readonly label: string;
  /** Whether commands go through `sudo -n` (false when already root). */
  protected abstract readonly useSudo: boolean;
  /** The user sudo is asked for, for messages. */
  protected abstract readonly userName: string;

  /** Runs a command line under a POSIX login shell; resolves with the exit code (128+n on signal n). */
  protected abstract exec(
    commandLine: string,
    stdin: string | Buffer | undefined,
    step: string,
  ): Promise<RawResult>;

  protected async runRaw(script: string, opts: RunOptions = {}): Promise<RawResult> {
    const step = stepOf(script, opts.step);
    const command = buildCommand(script, opts.args ?? [], this.useSudo);
    const size = Buffer.byteLength(command);
    if (size > MAX_COMMAND_BYTES)
      throw new HostCommandError(
        this.label,
        step,
        -1,
        `the command line is ${size} bytes, over the 128 KiB limit of one argument; pass large data on stdin`,
      );
    const r = await this.exec(command, opts.stdin, step);
    if (this.useSudo && r.code !== 0) {
      const err = r.stderr.toString("utf8");
      if (/^sudo: (a password is required|a terminal is required|sorry, you must have a tty)/m.test(err))
        throw new SudoPasswordError(this.label, step, r.code, this.userName);
      if (r.code === 127 && /sudo: (command )?not found/.test(err))
        throw new HostCommandError(
          this.label,
          step,
          r.code,
          "sudo is not installed on the host (connection.sudo is set)",
        );
    }
    return r;
  }

  async run(script: string, opts: RunOptions = {}): Promise<RunResult> {
    const r = await this.runRaw(script, opts);
    return { code: r.code, stdout: r.stdout.toString("utf8"), stderr: r.stderr.toString("utf8") };
  }

  async runChecked(script: string, opts: RunOptions = {}): Promise<RunResult> {
    const r = await this.run(script, opts);
    if (r.code !== 0)
      throw new HostCommandError(this.label, stepOf(script, opts.step), r.code, tail(r.stderr));
    return r;
  }

  async writeFile(path: string, content: string | Buffer, opts: WriteFileOptions = {}): Promise<void> {
    checkPath(this.label, path, "write");
    const mode = opts.mode ?? 0o600;
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)
      throw new HostCommandError(this.label, `write ${path}`, -1, "mode must be an integer from 0 to 0o7777");
    await this.runChecked(WRITE_SCRIPT, {
      args: [path, posix.dirname(path), mode.toString(8).padStart(4, "0")],
      stdin: content,
      step: `write ${path}`,
    });
  }

  async readFile(path: string): Promise<string | null> {
    checkPath(this.label, path, "read");
    const step = `read ${path}`;
    const r = await this.runRaw(READ_SCRIPT, { args: [path], step });
    if (r.code === EXIT_NO_FILE) return null;
    if (r.code !== 0) throw new HostCommandError(this.label, step, r.code, tail(r.stderr.toString("utf8")));
    return r.stdout.toString("utf8");
  }
}
