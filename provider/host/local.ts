// Host on this machine: the same command line an SSH server would get, run by a local login shell.
import { spawn } from "child_process";
import { userInfo } from "os";
import { CommandHost, RawResult } from "./command";
import { HostCommandError } from "./host";
import { signalExitCode } from "./signals";

export interface LocalHostOptions {
  /**
   * An argv prefix, e.g. ["nsenter", "--target", "123", "--all"] or ["ip", "netns", "exec", "h1"], so the
   * command runs "as" a lab host.
   */
  wrap?: string[];
  /** Run through `sudo -n` (ignored when this process is root). */
  sudo?: boolean;
  /** The shell that interprets the command line, like sshd's login shell. Default /bin/sh. */
  loginShell?: string;
  /** Label for messages; default "local" (or "local:<wrap>"). */
  label?: string;
}

export class LocalHost extends CommandHost {
  readonly label: string;
  protected readonly useSudo: boolean;
  protected readonly userName: string;
  private readonly wrap: string[];
  private readonly loginShell: string;

  constructor(opts: LocalHostOptions = {}) {
    super();
    this.wrap = opts.wrap ?? [];
    this.loginShell = opts.loginShell ?? "/bin/sh";
    this.userName = userInfo().username;
    this.useSudo = opts.sudo === true && process.getuid?.() !== 0;
    this.label = opts.label ?? (this.wrap.length ? `local:${this.wrap.join(" ")}` : "local");
  }

  protected exec(commandLine: string, stdin: string | Buffer | undefined, step: string): Promise<RawResult> {
    const argv = [...this.wrap, this.loginShell, "-c", commandLine];
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0], argv.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on("data", (b: Buffer) => out.push(b));
      child.stderr.on("data", (b: Buffer) => err.push(b));
      // The command may exit without reading its stdin: EPIPE is not an error of ours.
      child.stdin.on("error", () => undefined);
      child.on("error", (e: NodeJS.ErrnoException) =>
        reject(new HostCommandError(this.label, step, -1, `cannot start ${argv[0]}: ${e.code ?? e.message}`)),
      );
      child.on("close", (code, signal) =>
        resolve({
          code: code ?? signalExitCode(signal ?? undefined),
          stdout: Buffer.concat(out),
          stderr: Buffer.concat(err),
        }),
      );
      child.stdin.end(stdin ?? "");
    });
  }
}
