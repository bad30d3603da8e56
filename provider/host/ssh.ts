// Host over SSH (ssh2): one pooled connection per host, pinned host keys, bounded dials, at most a few
// channels at a time per connection. Secrets stay inside this module: no error, label, stats key or log
// line carries them, and ssh2's own error objects never leave it.
import { createHmac, randomBytes } from "crypto";
import { isIP, Socket, connect as netConnect } from "net";
import { Duplex } from "stream";
import { Client, ClientChannel, ConnectConfig } from "ssh2";
import { CommandHost, RawResult } from "./command";
import { HostKeyMismatchError, redact, SshConnectError } from "./errors";
import { ConnectionArgs } from "./host";
import { blobKeyType, fingerprintOf, HostKeyPin, parseHostKey, pinMatches } from "./hostkey";
import { signalExitCode } from "./signals";
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_PORT, DEFAULT_RETRIES, DEFAULT_USER } from "./validate";
import { timed } from "../timing";

export interface PoolOptions {
  /** Channels open at once on one connection; OpenSSH's MaxSessions 10 allows about 5 in practice. */
  maxChannels: number;
  /** A connection with no channel for this long is closed (the next operation reconnects). */
  idleTimeoutMs: number;
  /** SSH keepalive: a probe every interval, the connection dropped after countMax unanswered. */
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  /** How long to keep retrying a channel the server refused ("open failed") before giving up. */
  channelRetryMs: number;
}

const options: PoolOptions = {
  maxChannels: 5,
  idleTimeoutMs: 60_000,
  keepaliveIntervalMs: 15_000,
  keepaliveCountMax: 3,
  channelRetryMs: 3_000,
};

/** Sets pool options; returns them as they were before, for a caller to put back. */
export function configurePool(o: Partial<PoolOptions>): PoolOptions {
  const before = { ...options };
  Object.assign(options, o);
  return before;
}

/** "user@host:port" (IPv6 in brackets): safe for messages. */
export function hostLabel(conn: Pick<ConnectionArgs, "host" | "user" | "port">): string {
  const host = isIP(conn.host) === 6 ? `[${conn.host}]` : conn.host;
  return `${conn.user ?? DEFAULT_USER}@${host}:${conn.port ?? DEFAULT_PORT}`;
}

// Secrets become a per-process keyed hash in pool keys: equal credentials share a connection, and the
// key (visible in stats) reveals nothing about them, not even to a dictionary attack.
const SALT = randomBytes(32);

function identityOf(conn: ConnectionArgs): string {
  const material = JSON.stringify([
    conn.privateKey ?? null,
    conn.privateKeyPassphrase ?? null,
    conn.password ?? null,
    conn.agentSocket ?? null,
  ]);
  return createHmac("sha256", SALT).update(material).digest("hex").slice(0, 12);
}

function pinOf(conn: ConnectionArgs, label: string): HostKeyPin | undefined {
  if (conn.hostKey === undefined) {
    if (conn.insecureIgnoreHostKey === true) return undefined;
    throw new SshConnectError(
      label,
      "host-key",
      "no connection.hostKey set and insecureIgnoreHostKey is not true",
      false,
    );
  }
  const pin = parseHostKey(conn.hostKey);
  if (typeof pin === "string")
    throw new SshConnectError(label, "host-key", `connection.hostKey ${pin}`, false);
  return pin;
}

/**
 * The pool key of a connection: "user@host:port#<identity hash>/<pinned fingerprint or 'insecure'>", then
 * " via <proxy's key>" for each hop. Never contains a secret.
 */
export function poolKey(conn: ConnectionArgs): string {
  const label = hostLabel(conn);
  const pin = pinOf(conn, label);
  const own = `${label}#${identityOf(conn)}/${pin ? pin.fingerprint : "insecure"}`;
  return conn.proxy ? `${own} via ${poolKey(conn.proxy)}` : own;
}

export interface ConnectionStat {
  /** Connections that became ready (each reconnect counts). */
  opened: number;
  /** Dial attempts, retries included. */
  dials: number;
  /** Whether a connection is open now. */
  open: boolean;
  /** Channels open now, and the most seen at once. */
  channels: number;
  peakChannels: number;
  /** Operations that had to wait for a free channel. */
  queued: number;
  /** Channel opens the server refused and that were retried. */
  channelRetries: number;
}

const stats = new Map<string, ConnectionStat>();
const pool = new Map<string, PooledConnection>();

function statOf(key: string): ConnectionStat {
  let s = stats.get(key);
  if (!s) {
    s = { opened: 0, dials: 0, open: false, channels: 0, peakChannels: 0, queued: 0, channelRetries: 0 };
    stats.set(key, s);
  }
  return s;
}

/** Counters per pool key since the process started (or resetConnectionStats). */
export function connectionStats(): Record<string, ConnectionStat> {
  return Object.fromEntries([...stats].map(([k, v]) => [k, { ...v }]));
}

export function resetConnectionStats(): void {
  for (const [k, s] of stats) {
    if (s.open)
      Object.assign(s, { opened: 0, dials: 0, peakChannels: s.channels, queued: 0, channelRetries: 0 });
    else stats.delete(k);
  }
}

/** Closes every pooled connection; resolves when they are closed. Later operations reconnect. */
export async function closeAllConnections(): Promise<void> {
  const all = [...pool.values()];
  pool.clear();
  await Promise.all(all.map((c) => c.close()));
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function remaining(deadline: number): number {
  return Math.max(0, deadline - Date.now());
}

const RETRYABLE_SOCKET_CODES: Record<
  string,
  [kind: "refused" | "unreachable" | "timeout" | "closed" | "dns", text: string]
> = {
  ECONNREFUSED: ["refused", "connection refused (is sshd running and listening on that port?)"],
  EHOSTUNREACH: ["unreachable", "host unreachable"],
  ENETUNREACH: ["unreachable", "network unreachable"],
  EHOSTDOWN: ["unreachable", "host is down"],
  ENETDOWN: ["unreachable", "network is down"],
  ETIMEDOUT: ["timeout", "TCP connection timed out"],
  ECONNRESET: ["closed", "connection reset by the host"],
  ECONNABORTED: ["closed", "connection aborted"],
  EPIPE: ["closed", "connection closed by the host"],
  EAI_AGAIN: ["dns", "temporary failure resolving the host name"],
};

/** A live or dialing SSH connection shared by every operation on one pool key. */
class PooledConnection {
  readonly label: string;
  readonly stat: ConnectionStat;
  #conn: ConnectionArgs; // holds secrets: private, never logged
  #client: Client | null = null;
  #dialing: Promise<Client> | null = null;
  #waiters: (() => void)[] = [];
  #idleTimer: NodeJS.Timeout | undefined;
  #dependents = 0; // connections tunnelled through this one
  #closing = false;

  constructor(
    readonly key: string,
    conn: ConnectionArgs,
  ) {
    this.#conn = conn;
    this.label = hostLabel(conn);
    this.stat = statOf(key);
  }

  /** The ready client, dialing (with retries) when there is none. */
  client(): Promise<Client> {
    if (this.#client) return Promise.resolve(this.#client);
    if (!this.#dialing) {
      this.#closing = false;
      // An operation that held on to this entry while it was closed (idle, or closeAllConnections)
      // brings it back into the pool rather than leaving an unlisted connection behind.
      if (!pool.has(this.key)) pool.set(this.key, this);
      this.#dialing = timed("dial", this.label, () => this.#dialWithRetries()).then(
        (client) => {
          this.#dialing = null;
          this.#client = client;
          this.stat.opened++;
          this.stat.open = true;
          client.on("close", () => this.#lost(client));
          this.#armIdle();
          return client;
        },
        (err) => {
          this.#dialing = null;
          throw err;
        },
      );
    }
    return this.#dialing;
  }

  #lost(client: Client): void {
    if (this.#client !== client) return;
    this.#client = null;
    this.stat.open = false;
    clearTimeout(this.#idleTimer);
    if (pool.get(this.key) === this) pool.delete(this.key);
  }

  async close(): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#idleTimer);
    const dialing = this.#dialing;
    if (dialing) await dialing.catch(() => undefined);
    const client = this.#client;
    if (!client) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 2000);
      client.once("close", () => {
        clearTimeout(t);
        resolve();
      });
      client.end();
    });
    this.#lost(client);
  }

  #armIdle(): void {
    clearTimeout(this.#idleTimer);
    if (this.stat.channels > 0 || this.#dependents > 0 || !this.#client) return;
    this.#idleTimer = setTimeout(() => {
      if (pool.get(this.key) === this) pool.delete(this.key);
      void this.close();
    }, options.idleTimeoutMs);
    this.#idleTimer.unref();
  }

  addDependent(): void {
    this.#dependents++;
    clearTimeout(this.#idleTimer);
  }

  removeDependent(): void {
    this.#dependents--;
    this.#armIdle();
  }

  async #acquireSlot(): Promise<void> {
    clearTimeout(this.#idleTimer);
    if (this.stat.channels >= options.maxChannels) {
      this.stat.queued++;
      // The releasing operation hands its slot over as it is: the count does not change.
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
      return;
    }
    this.stat.channels++;
    this.stat.peakChannels = Math.max(this.stat.peakChannels, this.stat.channels);
  }

  #releaseSlot(): void {
    const next = this.#waiters.shift();
    if (next) return next();
    this.stat.channels--;
    this.#armIdle();
  }

  /** Runs one command line on its own channel (waiting for a free slot first). */
  async exec(commandLine: string, stdin: string | Buffer | undefined, step: string): Promise<RawResult> {
    await this.#acquireSlot();
    try {
      return await this.#openChannel(commandLine, (channel) => this.#collect(channel, stdin, step));
    } finally {
      this.#releaseSlot();
    }
  }

  /** Opens an exec channel: retried while the server refuses it for too many sessions, and once on a new
   *  connection when the old one turned out dead. Nothing has run when this fails. */
  async #openChannel<T>(commandLine: string, use: (ch: ClientChannel) => Promise<T>): Promise<T> {
    const until = Date.now() + options.channelRetryMs;
    let redialed = false;
    for (let attempt = 0; ; attempt++) {
      const client = await this.client();
      try {
        // `use` attaches its listeners in the callback itself: the exit status can arrive in the same
        // read as the channel confirmation, before any promise continuation would run.
        let channelPromise: Promise<T> | undefined;
        await new Promise<void>((resolve, reject) => {
          try {
            client.exec(commandLine, (err, ch) => {
              if (err) return reject(err);
              channelPromise = use(ch);
              resolve();
            });
          } catch (e) {
            reject(e);
          }
        });
        return await (channelPromise as Promise<T>);
      } catch (e) {
        if (e instanceof SshConnectError) throw e;
        const msg = e instanceof Error ? e.message : String(e);
        const reason = (e as { reason?: unknown }).reason;
        if (/open failed|resource shortage/i.test(msg) || reason === 1 || reason === 4) {
          if (Date.now() < until) {
            this.stat.channelRetries++;
            await sleep(Math.min(250, 10 * 2 ** Math.min(attempt, 5)));
            continue;
          }
          throw new SshConnectError(
            this.label,
            "protocol",
            `the host keeps refusing new sessions ("open failed"): lower the channels per connection or raise MaxSessions`,
            false,
          );
        }
        if (/Not connected|No response from server/.test(msg) && !redialed) {
          redialed = true;
          this.#lost(client);
          continue;
        }
        throw new SshConnectError(
          this.label,
          "protocol",
          `cannot open a session: ${redact(msg, this.#secrets())}`,
          false,
        );
      }
    }
  }

  #collect(channel: ClientChannel, stdin: string | Buffer | undefined, step: string): Promise<RawResult> {
    return new Promise((resolve, reject) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let code: number | undefined;
      channel.on("data", (b: Buffer) => out.push(b));
      channel.stderr.on("data", (b: Buffer) => err.push(b));
      channel.on("exit", (c: number | null, signal?: string) => {
        code = typeof c === "number" ? c : signalExitCode(signal);
      });
      channel.on("error", () => undefined); // a dropped connection shows as a close without exit status
      channel.on("close", (c?: number | null, signal?: string) => {
        if (code === undefined && typeof c === "number") code = c;
        else if (code === undefined && signal) code = signalExitCode(signal);
        if (code === undefined)
          reject(
            new SshConnectError(
              this.label,
              "closed",
              `connection lost while running "${step}"; it may or may not have completed`,
              false,
            ),
          );
        else resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
      });
      channel.end(stdin ?? "");
    });
  }

  #secrets(): (string | undefined)[] {
    const s: (string | undefined)[] = [];
    for (let c: ConnectionArgs | undefined = this.#conn; c; c = c.proxy)
      s.push(c.privateKey, c.privateKeyPassphrase, c.password);
    return s;
  }

  async #dialWithRetries(): Promise<Client> {
    const conn = this.#conn;
    const timeoutMs = conn.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const retries = conn.retries ?? DEFAULT_RETRIES;
    const started = Date.now();
    const deadline = started + timeoutMs;
    for (let attempt = 0; ; attempt++) {
      this.stat.dials++;
      try {
        return await this.#dialOnce(deadline, timeoutMs);
      } catch (e) {
        const err =
          e instanceof SshConnectError
            ? e
            : new SshConnectError(
                this.label,
                "protocol",
                redact(String((e as Error)?.message ?? e), this.#secrets()),
                false,
              );
        const backoff = Math.min(2000, 200 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
        if (!err.retryable || attempt >= retries || this.#closing || Date.now() + backoff >= deadline) {
          if (attempt === 0 || !err.retryable) throw err;
          const tail = ` (after ${attempt + 1} attempts in ${Date.now() - started} ms)`;
          const detail = err.message.slice(`ssh ${this.label}: `.length);
          throw new SshConnectError(this.label, err.kind, `${detail}${tail}`, err.retryable);
        }
        await sleep(backoff);
      }
    }
  }

  /** One dial: TCP (or a tunnel through the proxy), SSH handshake with host-key check, authentication. */
  #dialOnce(deadline: number, timeoutMs: number): Promise<Client> {
    const conn = this.#conn;
    const label = this.label;
    const pin = pinOf(conn, label);
    const user = conn.user ?? DEFAULT_USER;
    const secrets = this.#secrets();

    return new Promise<Client>((resolve, reject) => {
      let settled = false;
      let phase = "connecting";
      let presented: { type: string; fingerprint: string } | undefined;
      let mismatch = false;
      const tried: string[] = [];
      let serverMethods: string[] | null = null;
      let sock: Duplex | undefined;
      let proxyEntry: PooledConnection | undefined;
      const client = new Client();
      client.on("error", () => undefined); // replaced below; never let an 'error' go unhandled

      const finish = (err: SshConnectError | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          client.removeAllListeners("ready");
          client.end();
          sock?.destroy();
          if (proxyEntry) proxyEntry.removeDependent();
          reject(err);
        } else resolve(client);
      };
      const timer = setTimeout(
        () =>
          finish(
            new SshConnectError(
              label,
              "timeout",
              `could not connect within ${timeoutMs} ms (${phase}); is the host up and reachable?`,
              true,
            ),
          ),
        remaining(deadline),
      );

      const classify = (e: Error & { level?: string; code?: unknown }): SshConnectError => {
        if (mismatch && presented && pin)
          return new HostKeyMismatchError(label, pin.fingerprint, presented.fingerprint, presented.type);
        const msg = redact(String(e.message ?? ""), secrets).slice(0, 300);
        switch (e.level) {
          case "client-authentication":
            return new SshConnectError(
              label,
              "auth",
              `authentication failed for user ${user} (tried: ${tried.join(", ") || "none"}` +
                `${serverMethods ? `; the server accepts: ${serverMethods.join(", ")}` : ""})`,
              false,
            );
          case "client-timeout":
            return new SshConnectError(
              label,
              "timeout",
              `could not connect within ${timeoutMs} ms (${phase})`,
              true,
            );
          case "agent":
            return new SshConnectError(
              label,
              "auth",
              `the ssh-agent at connection.agentSocket failed: ${msg}`,
              false,
            );
          case "client-dns":
            return new SshConnectError(label, "dns", "cannot resolve the host name", false);
          case "client-socket": {
            const code = typeof e.code === "string" ? e.code : "";
            const known = RETRYABLE_SOCKET_CODES[code];
            if (known) return new SshConnectError(label, known[0], `${known[1]} (${phase})`, true);
            if (code === "ENOTFOUND")
              return new SshConnectError(label, "dns", "cannot resolve the host name", false);
            return new SshConnectError(label, "closed", `socket error ${code || msg} (${phase})`, false);
          }
          case "handshake":
            return new SshConnectError(label, "protocol", `SSH handshake failed: ${msg}`, false);
        }
        if (typeof e.code === "number")
          return new SshConnectError(label, "closed", `the host disconnected: ${msg} (${phase})`, false);
        return new SshConnectError(label, "protocol", `${msg} (${phase})`, false);
      };

      client.removeAllListeners("error");
      client.on("error", (e: Error) => finish(classify(e)));
      client.on("close", () =>
        finish(
          mismatch && presented && pin
            ? new HostKeyMismatchError(label, pin.fingerprint, presented.fingerprint, presented.type)
            : new SshConnectError(label, "closed", `the host closed the connection (${phase})`, true),
        ),
      );
      client.on("handshake", () => (phase = "authenticating"));
      client.on("ready", () => {
        // After the handshake, errors are reported through the operations that see them.
        client.removeAllListeners("error");
        client.removeAllListeners("close");
        client.on("error", () => undefined);
        if (proxyEntry) {
          const p = proxyEntry;
          client.once("close", () => p.removeDependent());
        }
        finish(null);
      });

      const order: string[] = [];
      if (conn.privateKey !== undefined) order.push("publickey");
      if (conn.agentSocket !== undefined) order.push("agent");
      if (conn.password !== undefined) order.push("password");

      const config: ConnectConfig = {
        username: user,
        privateKey: conn.privateKey,
        passphrase: conn.privateKeyPassphrase,
        password: conn.password,
        agent: conn.agentSocket,
        agentForward: false,
        tryKeyboard: false,
        readyTimeout: 0, // our own timer bounds the whole dial
        keepaliveInterval: options.keepaliveIntervalMs,
        keepaliveCountMax: options.keepaliveCountMax,
        hostVerifier: (key: Buffer) => {
          presented = { type: blobKeyType(key) ?? "unknown-type", fingerprint: fingerprintOf(key) };
          if (!pin) return true;
          const ok = pinMatches(pin, key);
          if (!ok) mismatch = true;
          return ok;
        },
        authHandler: (methodsLeft: string[] | null, _partial: boolean | null, _next: unknown) => {
          if (methodsLeft) serverMethods = methodsLeft;
          while (order.length) {
            const m = order.shift() as string;
            if (!methodsLeft || methodsLeft.includes(m === "agent" ? "publickey" : m)) {
              tried.push(m);
              return m as "publickey" | "agent" | "password";
            }
          }
          return false;
        },
      } as ConnectConfig;
      if (pin?.kind === "key" && pin.algorithms)
        config.algorithms = { serverHostKey: pin.algorithms as never };

      const startSsh = (s: Duplex) => {
        sock = s;
        if (settled) {
          s.destroy();
          return;
        }
        if (conn.proxy) phase = "tunnel open, waiting for the SSH handshake";
        try {
          client.connect({ ...config, sock: s });
        } catch (e) {
          const m = String((e as Error)?.message ?? "");
          finish(
            new SshConnectError(
              label,
              "key",
              /passphrase/i.test(m)
                ? "cannot decrypt connection.privateKey: connection.privateKeyPassphrase is missing or wrong"
                : /privateKey/.test(m)
                  ? "connection.privateKey is not a private key this client can read (unsupported format?)"
                  : `invalid connection settings: ${redact(m, secrets).slice(0, 200)}`,
              false,
            ),
          );
        }
      };

      if (conn.proxy) {
        const proxyConn = conn.proxy;
        phase = `connecting to the proxy ${hostLabel(proxyConn)}`;
        const entry = pooled(proxyConn);
        entry
          .client()
          .then((proxyClient) => {
            if (settled) return;
            phase = `opening a tunnel through the proxy ${entry.label}`;
            entry.addDependent();
            proxyEntry = entry;
            proxyClient.forwardOut("127.0.0.1", 0, conn.host, conn.port ?? DEFAULT_PORT, (err, stream) => {
              if (err) {
                const m = err.message;
                const refused = /refused/i.test(m);
                const unreachable = /unreachable|no route/i.test(m);
                return finish(
                  new SshConnectError(
                    label,
                    refused ? "refused" : unreachable ? "unreachable" : "protocol",
                    `the proxy ${entry.label} could not open a tunnel: ${redact(m.replace(/^\(SSH\) /, ""), secrets)}` +
                      (refused || unreachable ? "" : " (is AllowTcpForwarding enabled on the proxy?)"),
                    refused || unreachable,
                  ),
                );
              }
              startSsh(stream);
            });
          })
          .catch((e: unknown) => {
            const inner = e instanceof SshConnectError ? e : undefined;
            if (inner instanceof HostKeyMismatchError) return finish(inner);
            finish(
              new SshConnectError(
                label,
                inner?.kind ?? "protocol",
                `via proxy: ${inner ? inner.message : "the proxy connection failed"}`,
                // the proxy already retried its own dial errors
                false,
              ),
            );
          });
      } else {
        phase = "no TCP connection";
        const s: Socket = netConnect({ host: conn.host, port: conn.port ?? DEFAULT_PORT });
        s.setNoDelay(true);
        s.setKeepAlive(true, 30_000);
        sock = s;
        s.once("connect", () => {
          phase = "TCP connected, waiting for the SSH handshake";
        });
        startSsh(s);
      }
    });
  }
}

function pooled(conn: ConnectionArgs, key = poolKey(conn)): PooledConnection {
  let c = pool.get(key);
  if (!c) {
    c = new PooledConnection(key, conn);
    pool.set(key, c);
  }
  return c;
}

/** A host reached over SSH; every SshHost with the same pool key shares one connection. */
export class SshHost extends CommandHost {
  readonly label: string;
  readonly poolKey: string;
  protected readonly useSudo: boolean;
  protected readonly userName: string;
  #conn: ConnectionArgs; // holds secrets: private, never logged

  /** `fresh`: a connection of its own, never shared and never reused (closed with `close`). */
  constructor(conn: ConnectionArgs, fresh = false) {
    super();
    this.#conn = { ...conn };
    this.label = hostLabel(conn);
    this.poolKey = fresh ? `${poolKey(conn)} fresh#${++freshConnections}` : poolKey(conn);
    this.userName = conn.user ?? DEFAULT_USER;
    this.useSudo = conn.sudo === true && this.userName !== "root";
  }

  get operationTimeoutMs(): number | undefined {
    return this.#conn.operationTimeoutMs;
  }

  /** Opens (or reuses) the pooled connection; rejects with SshConnectError. */
  async connect(): Promise<this> {
    await pooled(this.#conn, this.poolKey).client();
    return this;
  }

  protected exec(commandLine: string, stdin: string | Buffer | undefined, step: string): Promise<RawResult> {
    return pooled(this.#conn, this.poolKey).exec(commandLine, stdin, step);
  }

  /** Closes this host's connection (the pooled one, for every SshHost that shares it). */
  async close(): Promise<void> {
    const c = pool.get(this.poolKey);
    pool.delete(this.poolKey);
    await c?.close();
  }

  toJSON(): { label: string } {
    return { label: this.label };
  }
}

let freshConnections = 0;

/**
 * A new SSH connection to the host, made now, through whatever way the host is reached now (not the pooled
 * one, which may have survived a change that new connections do not): the caller closes it.
 */
export async function connectFresh(conn: ConnectionArgs): Promise<SshHost> {
  return new SshHost(conn, true).connect();
}
