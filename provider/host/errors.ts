// Errors of the transport. Each carries only safe fields (labels, fingerprints, codes): never a secret,
// never a library error object (ssh2's errors can hold config), never a `cause`.
import { HostCommandError } from "./host";

export type ConnectErrorKind =
  | "host-key" // the host presented another key than the pinned one: never retried
  | "auth" // no configured method was accepted: never retried
  | "key" // the private key could not be read (bad format or passphrase): never retried
  | "refused" // TCP connection refused
  | "unreachable" // no route, host down, network unreachable
  | "timeout" // no SSH session within connectTimeoutMs
  | "dns" // the host name does not resolve
  | "closed" // the connection dropped (before or after it was ready)
  | "protocol"; // anything else the SSH layer reported

/** Connecting to (or keeping) an SSH connection failed. The message names the host; never a secret. */
export class SshConnectError extends Error {
  constructor(
    readonly hostLabel: string,
    readonly kind: ConnectErrorKind,
    message: string,
    /** Whether dialing again could help (a dial error, not an auth or host-key failure). */
    readonly retryable: boolean,
  ) {
    super(`ssh ${hostLabel}: ${message}`);
    this.name = "SshConnectError";
  }
}

/** The host presented a key that does not match connection.hostKey. Nothing was run. */
export class HostKeyMismatchError extends SshConnectError {
  constructor(
    hostLabel: string,
    readonly expectedFingerprint: string,
    readonly presentedFingerprint: string,
    readonly presentedKeyType: string,
  ) {
    super(
      hostLabel,
      "host-key",
      `host key verification failed: expected ${expectedFingerprint}, but the host presented ` +
        `${presentedKeyType} ${presentedFingerprint}. Refusing to connect (nothing was run): the host may be ` +
        `impersonated, or it was reinstalled; if the new key is expected, update connection.hostKey`,
      false,
    );
    this.name = "HostKeyMismatchError";
  }
}

/** `sudo: true` was asked but sudo on the host wants a password (or a terminal). */
export class SudoPasswordError extends HostCommandError {
  constructor(hostLabel: string, step: string, code: number, user: string) {
    super(
      hostLabel,
      step,
      code,
      `sudo requires a password for user ${user}; configure NOPASSWD for it in sudoers ` +
        `(e.g. "${user} ALL=(root) NOPASSWD: ALL" in /etc/sudoers.d/) or connect as root`,
    );
    this.name = "SudoPasswordError";
  }
}

/** Removes every occurrence of each secret (and of each of its longer lines) from a text. */
export function redact(text: string, secrets: (string | undefined)[]): string {
  let out = text;
  const pieces = new Set<string>();
  for (const s of secrets) {
    if (!s) continue;
    pieces.add(s);
    for (const line of s.split(/\r?\n/)) if (line.trim().length >= 8) pieces.add(line.trim());
  }
  for (const piece of [...pieces].sort((x, y) => y.length - x.length))
    out = out.split(piece).join("[redacted]");
  return out;
}
