// SshHost against in-process ssh2 servers on 127.0.0.1: pinning, pooling, channel limits, retries,
// timeouts, proxying and secrets in errors, without any sshd. Commands run locally with /bin/sh -c, as
// sshd would run them with a POSIX login shell.
import { expect } from "chai";
import { spawn } from "node:child_process";
import { timingSafeEqual } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { inspect } from "node:util";
import { Connection, Server, utils } from "ssh2";
import {
  closeAllConnections,
  configurePool,
  connect,
  ConnectionArgs,
  connectionStats,
  fingerprintOf,
  HostKeyMismatchError,
  poolKey,
  resetConnectionStats,
  SshConnectError,
  SshHost,
} from "../../../provider/host";

const SENTINEL = "SENTINEL-s3cr3t-9b2e";

interface FakeServer {
  port: number;
  hostKey: string; // OpenSSH public line
  fingerprint: string;
  execs: string[];
  connections: number;
  openSessions: number;
  peakSessions: number;
  refusedSessions: number;
  clients: Connection[];
  close(): Promise<void>;
}

const clientPair = utils.generateKeyPairSync("ed25519");
const PASSPHRASE = "correct horse";
const encryptedPair = utils.generateKeyPairSync("ed25519", {
  passphrase: PASSPHRASE,
  cipher: "aes256-ctr",
  rounds: 4,
});
const authorized = [clientPair.public, encryptedPair.public].map((k) => utils.parseKey(k));

type AuthCtx = { key: { algo: string; data: Buffer }; signature?: Buffer; blob?: Buffer; hashAlgo?: string };

function checkKey(ctx: AuthCtx): boolean {
  return authorized.some((k) => {
    if (k instanceof Error || Array.isArray(k)) return false;
    const pub = k.getPublicSSH();
    if (ctx.key.algo !== k.type || ctx.key.data.length !== pub.length || !timingSafeEqual(ctx.key.data, pub))
      return false;
    return !ctx.signature || k.verify(ctx.blob as Buffer, ctx.signature, ctx.hashAlgo as string) === true;
  });
}

/** An SSH server: key or password "pw" logins, exec via /bin/sh -c, direct-tcpip forwarding. */
async function fakeServer(opts: { maxSessions?: number; password?: string } = {}): Promise<FakeServer> {
  const hostPair = utils.generateKeyPairSync("ed25519");
  const state = {
    execs: [] as string[],
    connections: 0,
    openSessions: 0,
    peakSessions: 0,
    refusedSessions: 0,
    clients: [] as Connection[],
  };
  const server = new Server({ hostKeys: [hostPair.private] }, (client) => {
    state.connections++;
    state.clients.push(client);
    client.on("error", () => undefined);
    client.on("authentication", (ctx) => {
      if (ctx.method === "publickey" && checkKey(ctx)) return ctx.accept();
      if (ctx.method === "password" && ctx.password === (opts.password ?? "pw")) return ctx.accept();
      ctx.reject(["publickey", "password"]);
    });
    client.on("ready", () => {
      client.on("session", (accept, reject) => {
        if (opts.maxSessions !== undefined && state.openSessions >= opts.maxSessions) {
          state.refusedSessions++;
          // Like OpenSSH past MaxSessions: SSH2_OPEN_ADMINISTRATIVELY_PROHIBITED "open failed". ssh2's
          // server API can only refuse with CONNECT_FAILED, so answer through its protocol object.
          const proto = (client as any)._protocol;
          const orig = proto.channelOpenFail;
          proto.channelOpenFail = (sender: number) => {
            proto.channelOpenFail = orig;
            orig.call(proto, sender, 1, "open failed");
          };
          return reject();
        }
        const session = accept();
        state.openSessions++;
        state.peakSessions = Math.max(state.peakSessions, state.openSessions);
        session.on("close", () => state.openSessions--);
        session.on("exec", (acceptExec, _reject, info) => {
          state.execs.push(info.command);
          const stream = acceptExec();
          const child = spawn("/bin/sh", ["-c", info.command], { stdio: ["pipe", "pipe", "pipe"] });
          stream.pipe(child.stdin);
          child.stdin.on("error", () => undefined);
          child.stdout.pipe(stream, { end: false });
          child.stderr.pipe(stream.stderr, { end: false });
          child.on("close", (code) => {
            stream.exit(code ?? 255);
            stream.end();
          });
        });
      });
      client.on("tcpip", (acceptTcp, rejectTcp, info) => {
        const s = net.connect(info.destPort, info.destIP);
        s.once("connect", () => {
          const ch = acceptTcp();
          ch.pipe(s).pipe(ch);
        });
        s.once("error", () => rejectTcp());
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const blob = Buffer.from(hostPair.public.split(" ")[1], "base64");
  return {
    ...state,
    get execs() {
      return state.execs;
    },
    get connections() {
      return state.connections;
    },
    get openSessions() {
      return state.openSessions;
    },
    get peakSessions() {
      return state.peakSessions;
    },
    get refusedSessions() {
      return state.refusedSessions;
    },
    port,
    hostKey: hostPair.public,
    fingerprint: fingerprintOf(blob),
    clients: state.clients,
    close: () =>
      new Promise<void>((r) => {
        for (const c of state.clients) c.end();
        server.close(() => r());
      }),
  };
}

function conn(s: FakeServer, extra: Partial<ConnectionArgs> = {}): ConnectionArgs {
  return { host: "127.0.0.1", port: s.port, privateKey: clientPair.private, hostKey: s.hostKey, ...extra };
}

function expectNoSecret(err: unknown, secret = SENTINEL) {
  const e = err as Error;
  const seen = [e.message, e.stack ?? "", JSON.stringify(e), inspect(e, { depth: 10, showHidden: true })];
  for (const text of seen) expect(text).to.not.contain(secret);
  expect((e as { cause?: unknown }).cause).to.equal(undefined);
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe("host/SshHost (in-process SSH servers)", function () {
  this.timeout(20000);
  let a: FakeServer;
  let b: FakeServer;
  before(async () => {
    a = await fakeServer();
    b = await fakeServer();
  });
  beforeEach(() => resetConnectionStats());
  afterEach(() => closeAllConnections());
  after(async () => {
    await closeAllConnections();
    await a.close();
    await b.close();
  });

  it("connects with the host key pinned as an OpenSSH line and as a SHA256 fingerprint", async () => {
    const h1 = await connect(conn(a));
    expect(h1.label).to.equal(`root@127.0.0.1:${a.port}`);
    expect((await h1.run("echo $0 $1", { args: ["ok"] })).stdout).to.equal("virtnet ok\n");
    const h2 = await connect(conn(a, { hostKey: a.fingerprint }));
    expect((await h2.runChecked("echo fp")).stdout).to.equal("fp\n");
  });

  it("refuses a wrong host key at the handshake: both fingerprints in the message, nothing run, no retry", async () => {
    const execsBefore = a.execs.length;
    const c = conn(a, { hostKey: b.hostKey });
    const host = new SshHost(c);
    const err = await host.run("touch /tmp/should-not-exist").catch((e) => e);
    expect(err).to.be.instanceOf(HostKeyMismatchError).and.instanceOf(SshConnectError);
    expect(err.message)
      .to.contain(`127.0.0.1:${a.port}`)
      .and.contain(a.fingerprint)
      .and.contain(b.fingerprint);
    expect(err).to.include({
      expectedFingerprint: b.fingerprint,
      presentedFingerprint: a.fingerprint,
      retryable: false,
    });
    expect(a.execs.length).to.equal(execsBefore);
    expect(connectionStats()[poolKey(c)]).to.include({ dials: 1, opened: 0 });
    const viaFp = await connect(conn(a, { hostKey: b.fingerprint })).catch((e) => e);
    expect(viaFp).to.be.instanceOf(HostKeyMismatchError);
  });

  it("shares one connection per pool key: 50 parallel commands, at most 5 channels at once", async () => {
    const c = conn(a, { retries: 1 });
    const before = a.connections;
    const hosts = [await connect(c), await connect({ ...c }), new SshHost(c)];
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => hosts[i % 3].run('echo "$1"', { args: [`n${i}`] })),
    );
    results.forEach((r, i) => expect(r.stdout).to.equal(`n${i}\n`));
    const stat = connectionStats()[poolKey(c)];
    expect(stat.opened).to.equal(1);
    expect(stat.peakChannels).to.equal(5);
    expect(a.connections - before).to.equal(1);
    expect(a.peakSessions).to.be.at.most(5);
  });

  it("retries channels the server refuses with 'open failed' (MaxSessions)", async () => {
    const limited = await fakeServer({ maxSessions: 2 });
    try {
      const c = conn(limited);
      const host = await connect(c);
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => host.run(`echo ${i}`)));
      results.forEach((r, i) => expect(r.stdout).to.equal(`${i}\n`));
      expect(limited.refusedSessions).to.be.greaterThan(0);
      expect(connectionStats()[poolKey(c)].channelRetries).to.be.greaterThan(0);
    } finally {
      await closeAllConnections();
      await limited.close();
    }
  });

  it("reconnects after the server dropped the connection", async () => {
    const c = conn(b);
    const host = await connect(c);
    await host.runChecked("true");
    for (const client of b.clients) client.end();
    await new Promise((r) => setTimeout(r, 100));
    expect((await host.runChecked("echo again")).stdout).to.equal("again\n");
    expect(connectionStats()[poolKey(c)].opened).to.equal(2);
  });

  it("tunnels through a proxy, pinning both hosts", async () => {
    const target = conn(b, { proxy: conn(a) });
    const host = await connect(target);
    expect((await host.run("echo via")).stdout).to.equal("via\n");
    expect(connectionStats()[poolKey(target)].opened).to.equal(1);
    expect(connectionStats()[poolKey(conn(a))].open).to.equal(true);
    await closeAllConnections();
    const badProxy = await connect(conn(b, { proxy: conn(a, { hostKey: b.hostKey }) })).catch((e) => e);
    expect(badProxy).to.be.instanceOf(HostKeyMismatchError);
    expect(badProxy.message).to.contain(`127.0.0.1:${a.port}`);
    const badTarget = await connect(conn(b, { hostKey: a.hostKey, proxy: conn(a) })).catch((e) => e);
    expect(badTarget).to.be.instanceOf(HostKeyMismatchError);
    expect(badTarget.presentedFingerprint).to.equal(b.fingerprint);
  });

  it("logs in with a password and with a passphrase-protected key", async () => {
    const { privateKey: _k, ...noKey } = conn(a);
    const h = await connect({ ...noKey, password: "pw" });
    expect((await h.run("echo pw")).stdout).to.equal("pw\n");
    const enc = { privateKey: encryptedPair.private, privateKeyPassphrase: PASSPHRASE };
    expect((await (await connect(conn(a, enc))).run("echo pp")).stdout).to.equal("pp\n");
    const wrong = await connect(conn(a, { ...enc, privateKeyPassphrase: "nope" })).catch((e) => e);
    expect(wrong).to.be.instanceOf(SshConnectError);
    expect(wrong.kind).to.equal("key");
    expect(wrong.message).to.contain("privateKeyPassphrase");
    const unauthorized = utils.generateKeyPairSync("ed25519");
    const denied = await connect(conn(a, { privateKey: unauthorized.private })).catch((e) => e);
    expect(denied.kind).to.equal("auth");
  });

  it("never puts a secret in an error: wrong password, bogus key, wrong passphrase", async () => {
    const { privateKey: _k, ...noKey } = conn(a);
    const c1 = { ...noKey, password: `${SENTINEL}-password` };
    const e1 = await connect(c1).catch((e) => e);
    expect(e1).to.be.instanceOf(SshConnectError);
    expect(e1.kind).to.equal("auth");
    expect(e1.message).to.contain("authentication failed for user root");
    expectNoSecret(e1);
    expect(connectionStats()[poolKey(c1)].dials).to.equal(1); // auth failures are not retried

    const bogusKey = `-----BEGIN OPENSSH PRIVATE KEY-----\n${SENTINEL}AAAA\n-----END OPENSSH PRIVATE KEY-----\n`;
    const e2 = await connect({ ...noKey, privateKey: bogusKey, password: SENTINEL }).catch((e) => e);
    expect(e2).to.be.instanceOf(SshConnectError);
    expectNoSecret(e2);

    const enc = utils.generateKeyPairSync("ed25519", {
      passphrase: SENTINEL,
      cipher: "aes256-ctr",
      rounds: 4,
    });
    const e3 = await connect({
      ...noKey,
      privateKey: enc.private,
      privateKeyPassphrase: `${SENTINEL}x`,
    }).catch((e) => e);
    expectNoSecret(e3);
    for (const line of enc.private.split("\n").filter((l) => l.length > 20)) expectNoSecret(e3, line);

    const host = new SshHost(c1);
    expect(JSON.stringify(host)).to.not.contain(SENTINEL);
    expect(inspect(host, { depth: 10, showHidden: true })).to.not.contain(SENTINEL);
    expect(poolKey(c1)).to.not.contain(SENTINEL);
    expect(JSON.stringify(connectionStats())).to.not.contain(SENTINEL);
  });

  it("retries a refused dial with backoff, then names the host", async () => {
    const port = await freePort();
    const c = conn(a, { port, retries: 2, connectTimeoutMs: 5000 });
    const err = await connect(c).catch((e) => e);
    expect(err).to.be.instanceOf(SshConnectError);
    expect(err.kind).to.equal("refused");
    expect(err.message).to.contain(`root@127.0.0.1:${port}`).and.contain("3 attempts");
    expect(connectionStats()[poolKey(c)].dials).to.equal(3);
  });

  it("gives up at connectTimeoutMs when the host never answers, by the timeout's own error, and hangs up", async () => {
    const silent = net.createServer(() => undefined); // accepts TCP, never says a word
    const sockets: net.Socket[] = [];
    const hungUp: Promise<void>[] = [];
    silent.on("connection", (s) => {
      sockets.push(s);
      s.resume(); // reads (and drops) the client's banner, so that its hang-up is seen
      hungUp.push(new Promise((r) => s.on("close", () => r())));
    });
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const c = conn(a, { port, connectTimeoutMs: 700 });
      const err = await connect(c).catch((e) => e);
      expect(err).to.be.instanceOf(SshConnectError);
      expect(err.kind).to.equal("timeout");
      expect(err.message)
        .to.contain(`127.0.0.1:${port}`)
        .and.contain("could not connect within 700 ms (TCP connected, waiting for the SSH handshake)");
      expect(connectionStats()[poolKey(c)]).to.include({ dials: 1, opened: 0 });
      expect(sockets.length).to.equal(1);
      await Promise.all(hungUp); // the client closed the connection it gave up on
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  it("writes files atomically over SSH with the mode, and reads them back", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vn-ssh-"));
    try {
      const host = await connect(conn(a));
      const p = path.join(dir, "f");
      fs.writeFileSync(path.join(dir, "target"), "T");
      fs.symlinkSync(path.join(dir, "target"), p);
      await host.writeFile(p, "content\n", { mode: 0o604 });
      expect(fs.lstatSync(p).isFile()).to.equal(true);
      expect(fs.statSync(p).mode & 0o7777).to.equal(0o604);
      expect(fs.readFileSync(path.join(dir, "target"), "utf8")).to.equal("T");
      expect(await host.readFile(p)).to.equal("content\n");
      expect(await host.readFile(path.join(dir, "none"))).to.equal(null);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("configurePool gives back the options as they were, so a test can put them back", () => {
    const before = configurePool({ idleTimeoutMs: 123 });
    try {
      expect(before.idleTimeoutMs).to.not.equal(123);
      expect(configurePool({}).idleTimeoutMs).to.equal(123);
    } finally {
      configurePool({ idleTimeoutMs: before.idleTimeoutMs });
    }
    expect(configurePool({}).idleTimeoutMs).to.equal(before.idleTimeoutMs);
  });

  it("closes idle connections after the idle timeout", async () => {
    const prev = configurePool({ idleTimeoutMs: 100 });
    try {
      const c = conn(b);
      const host = await connect(c);
      await host.run("true");
      expect(connectionStats()[poolKey(c)].open).to.equal(true);
      await new Promise((r) => setTimeout(r, 300));
      expect(connectionStats()[poolKey(c)].open).to.equal(false);
      await host.run("true");
      expect(connectionStats()[poolKey(c)].open).to.equal(true);
    } finally {
      configurePool({ idleTimeoutMs: prev.idleTimeoutMs });
    }
  });
});
