// The only thing in virtnet that touches a machine. SSH and local implementations live beside it.

/** How to reach a host: the `connection` argument every virtnet resource takes. */
export interface ConnectionArgs {
  host: string;
  port?: number; // default 22
  user?: string; // default "root"
  privateKey?: string; // secret: PEM/OpenSSH private key text
  privateKeyPassphrase?: string; // secret
  password?: string; // secret
  agentSocket?: string; // path of an ssh-agent socket; agent forwarding is never enabled
  hostKey?: string; // OpenSSH public-key line ("ssh-ed25519 AAAA...") or "SHA256:<base64>" fingerprint
  insecureIgnoreHostKey?: boolean; // default false; required when hostKey is absent
  sudo?: boolean; // default false: run commands through `sudo -n`
  proxy?: ConnectionArgs; // a bastion hop
  connectTimeoutMs?: number; // default 10000
  retries?: number; // dial retries (not auth/host-key failures); default 3
  /**
   * Default 300000 (5 min): the longest one operation on the host may take, from joining the host's queue to
   * the end of its probe and script; then it fails, naming the host and what it was doing.
   */
  operationTimeoutMs?: number;
}

export interface RunOptions {
  /** Positional arguments: available to the script as "$1", "$2"... Never spliced into shell text. */
  args?: string[];
  stdin?: string | Buffer;
  /** Human description of the step for error messages, e.g. "apply nft ruleset". */
  step?: string;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface WriteFileOptions {
  mode?: number; // default 0o600
}

export interface Host {
  /** Safe for messages: "user@host:port", never a secret. */
  readonly label: string;
  /** connection.operationTimeoutMs, when given: see ConnectionArgs. */
  readonly operationTimeoutMs?: number;
  /** Runs `script` with /bin/sh (as root via sudo -n when asked). Resolves on any exit code. */
  run(script: string, opts?: RunOptions): Promise<RunResult>;
  /** Like run, but rejects with HostCommandError when the exit code is not 0. */
  runChecked(script: string, opts?: RunOptions): Promise<RunResult>;
  /** Writes atomically: temp file in the same directory, fsync, rename; never follows a symlink at `path`. */
  writeFile(path: string, content: string | Buffer, opts?: WriteFileOptions): Promise<void>;
  /** The file's content, or null when it does not exist. */
  readFile(path: string): Promise<string | null>;
}

/** A command that failed on a host. The message names host, step and the stderr tail; never a secret. */
export class HostCommandError extends Error {
  constructor(
    readonly hostLabel: string,
    readonly step: string,
    readonly code: number,
    readonly stderrTail: string,
  ) {
    super(`${hostLabel}: ${step} failed (exit ${code})${stderrTail ? `: ${stderrTail}` : ""}`);
    this.name = "HostCommandError";
  }
}

/** Last lines of a command's stderr, bounded, for error messages. */
export function tail(text: string, maxLines = 5, maxChars = 600): string {
  const lines = text.trim().split("\n").slice(-maxLines).join("\n");
  return lines.length > maxChars ? lines.slice(-maxChars) : lines;
}
