import { expect } from "chai";
import { utils } from "ssh2";
import { validateConnection } from "../../../provider/host";
import { fingerprintOf, parseHostKey } from "../../../provider/host/hostkey";
import { UNKNOWN } from "../../../provider/model/validation";

const hostPair = utils.generateKeyPairSync("ed25519");
const clientPair = utils.generateKeyPairSync("ed25519");
const encryptedPair = utils.generateKeyPairSync("ed25519", {
  passphrase: "pw",
  cipher: "aes256-ctr",
  rounds: 2,
});
const hostKeyLine = `${hostPair.public} root@h1`;
const hostBlob = Buffer.from(hostPair.public.split(" ")[1], "base64");

const base = () => ({ host: "198.18.0.2", privateKey: clientPair.private, hostKey: hostKeyLine });

function errorsOf(args: unknown) {
  return validateConnection(args).errors;
}

function propsOf(args: unknown) {
  return errorsOf(args).map((e) => e.property);
}

describe("host/validateConnection", () => {
  it("accepts a minimal connection and returns it", () => {
    const r = validateConnection(base());
    expect(r.errors).to.deep.equal([]);
    expect(r.value).to.deep.equal(base());
  });

  it("accepts host names, IPv4 and IPv6 addresses", () => {
    for (const host of [
      "h1",
      "lab-h1.example.org",
      "my_host.internal",
      "10.0.0.1",
      "::1",
      "fd00::1",
      "host.",
    ])
      expect(errorsOf({ ...base(), host }), host).to.deep.equal([]);
  });

  it("refuses hosts with whitespace, control or shell characters, user or port parts", () => {
    for (const host of [
      "",
      "a b",
      "h1;id",
      "$(id)",
      "`id`",
      "h1\n",
      "root@h1",
      "h1:22",
      "[::1]",
      "-oProxyCommand=x",
      "h1/x",
      "h'1",
      "a..b",
    ])
      expect(propsOf({ ...base(), host }), JSON.stringify(host)).to.deep.equal(["connection.host"]);
    expect(propsOf({ ...base(), host: 42 })).to.deep.equal(["connection.host"]);
    const { host: _h, ...noHost } = base();
    expect(propsOf(noHost)).to.deep.equal(["connection.host"]);
  });

  it("checks the port range", () => {
    for (const port of [1, 22, 65535]) expect(errorsOf({ ...base(), port })).to.deep.equal([]);
    for (const port of [0, 65536, 22.5, -1, "22", NaN])
      expect(propsOf({ ...base(), port }), String(port)).to.deep.equal(["connection.port"]);
  });

  it("checks user names against the POSIX pattern", () => {
    for (const user of ["root", "vnsudo", "_svc", "a.b-c_d", "machine$"])
      expect(errorsOf({ ...base(), user }), user).to.deep.equal([]);
    for (const user of ["", "-x", "a b", "root;id", "1abc", "a".repeat(40), "ro\not"])
      expect(propsOf({ ...base(), user }), user).to.deep.equal(["connection.user"]);
  });

  it("accepts a host key as an OpenSSH line (with or without comment) or a SHA256 fingerprint", () => {
    const fp = fingerprintOf(hostBlob);
    expect(fp).to.match(/^SHA256:[A-Za-z0-9+/]{43}$/);
    for (const hostKey of [hostKeyLine, hostPair.public, ` ${hostPair.public}\n`, fp, `${fp}=`])
      expect(errorsOf({ ...base(), hostKey }), hostKey).to.deep.equal([]);
    const pin = parseHostKey(hostKeyLine);
    expect(pin).to.include({ kind: "key", type: "ssh-ed25519", fingerprint: fp });
  });

  it("refuses malformed host keys", () => {
    const b64 = hostPair.public.split(" ")[1];
    for (const hostKey of [
      "",
      "AAAAC3NzaC1lZDI1NTE5",
      `ssh-foo ${b64}`,
      `ssh-rsa ${b64}`, // the blob holds an ed25519 key
      "ssh-ed25519 not*base64",
      "SHA256:short",
      "MD5:aa:bb",
    ])
      expect(propsOf({ ...base(), hostKey }), hostKey).to.deep.equal(["connection.hostKey"]);
  });

  it("requires a host key unless insecureIgnoreHostKey is true", () => {
    const { hostKey: _k, ...noKey } = base();
    const errs = errorsOf(noKey);
    expect(errs.map((e) => e.property)).to.deep.equal(["connection.hostKey"]);
    expect(errs[0].reason).to.contain("set connection.hostKey").and.contain("insecureIgnoreHostKey: true");
    expect(errorsOf({ ...noKey, insecureIgnoreHostKey: true })).to.deep.equal([]);
    expect(propsOf({ ...noKey, insecureIgnoreHostKey: false })).to.deep.equal(["connection.hostKey"]);
    expect(propsOf({ ...noKey, insecureIgnoreHostKey: "yes" })).to.include(
      "connection.insecureIgnoreHostKey",
    );
  });

  it("checks that the private key looks like one, and asks for the passphrase of an encrypted key", () => {
    expect(propsOf({ ...base(), privateKey: "hunter2" })).to.deep.equal(["connection.privateKey"]);
    expect(propsOf({ ...base(), privateKey: clientPair.public })).to.deep.equal(["connection.privateKey"]);
    expect(propsOf({ ...base(), privateKey: encryptedPair.private })).to.deep.equal([
      "connection.privateKeyPassphrase",
    ]);
    expect(
      errorsOf({ ...base(), privateKey: encryptedPair.private, privateKeyPassphrase: "pw" }),
    ).to.deep.equal([]);
    const legacyPem =
      "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nx\n-----END RSA PRIVATE KEY-----";
    expect(propsOf({ ...base(), privateKey: legacyPem })).to.deep.equal(["connection.privateKeyPassphrase"]);
    const { privateKey: _p, ...noKey } = base();
    expect(propsOf({ ...noKey, privateKeyPassphrase: "x", password: "y" })).to.deep.equal([
      "connection.privateKeyPassphrase",
    ]);
  });

  it("requires a way to log in: key, password or agent socket", () => {
    const { privateKey: _p, ...noAuth } = base();
    expect(propsOf(noAuth)).to.deep.equal(["connection"]);
    expect(errorsOf({ ...noAuth, password: "pw" })).to.deep.equal([]);
    expect(errorsOf({ ...noAuth, agentSocket: "/run/agent.sock" })).to.deep.equal([]);
    expect(propsOf({ ...noAuth, agentSocket: "agent.sock" })).to.deep.equal(["connection.agentSocket"]);
  });

  it("checks timeouts, retries and flags", () => {
    expect(errorsOf({ ...base(), connectTimeoutMs: 1500, retries: 0, sudo: true })).to.deep.equal([]);
    expect(propsOf({ ...base(), connectTimeoutMs: 5 })).to.deep.equal(["connection.connectTimeoutMs"]);
    expect(propsOf({ ...base(), connectTimeoutMs: 1e9 })).to.deep.equal(["connection.connectTimeoutMs"]);
    expect(errorsOf({ ...base(), operationTimeoutMs: 3000 })).to.deep.equal([]);
    expect(propsOf({ ...base(), operationTimeoutMs: 10 })).to.deep.equal(["connection.operationTimeoutMs"]);
    expect(propsOf({ ...base(), operationTimeoutMs: 1.5e3 + 0.5 })).to.deep.equal([
      "connection.operationTimeoutMs",
    ]);
    expect(propsOf({ ...base(), retries: 11 })).to.deep.equal(["connection.retries"]);
    expect(propsOf({ ...base(), retries: 1.5 })).to.deep.equal(["connection.retries"]);
    expect(propsOf({ ...base(), sudo: "true" })).to.deep.equal(["connection.sudo"]);
  });

  it("refuses unknown properties (typos) and non-objects", () => {
    expect(propsOf({ ...base(), hostkey: "x" })).to.deep.equal(["connection.hostkey"]);
    expect(propsOf("h1")).to.deep.equal(["connection"]);
    expect(propsOf(undefined)).to.deep.equal(["connection"]);
    expect(propsOf([base()])).to.deep.equal(["connection"]);
  });

  it("validates the proxy recursively with its own property paths", () => {
    expect(errorsOf({ ...base(), proxy: base() })).to.deep.equal([]);
    const { hostKey: _k, ...proxyNoKey } = base();
    expect(propsOf({ ...base(), proxy: { ...proxyNoKey, port: 0 } })).to.deep.equal([
      "connection.proxy.port",
      "connection.proxy.hostKey",
    ]);
    expect(propsOf({ ...base(), proxy: { ...base(), proxy: { ...base(), host: "a b" } } })).to.deep.equal([
      "connection.proxy.proxy.host",
    ]);
    const deep = {
      ...base(),
      proxy: { ...base(), proxy: { ...base(), proxy: { ...base(), proxy: base() } } },
    };
    expect(propsOf(deep)).to.deep.equal(["connection.proxy.proxy.proxy.proxy"]);
  });

  it("skips every field that is unknown during preview", () => {
    for (const k of [
      "host",
      "port",
      "user",
      "privateKey",
      "privateKeyPassphrase",
      "password",
      "hostKey",
      "insecureIgnoreHostKey",
      "sudo",
      "proxy",
      "connectTimeoutMs",
      "retries",
      "agentSocket",
    ])
      expect(errorsOf({ ...base(), [k]: UNKNOWN }), k).to.deep.equal([]);
    expect(errorsOf(UNKNOWN)).to.deep.equal([]);
    expect(errorsOf({ ...base(), proxy: { ...base(), host: UNKNOWN, hostKey: UNKNOWN } })).to.deep.equal([]);
    const { privateKey: _p, ...noAuth } = base();
    expect(errorsOf({ ...noAuth, password: UNKNOWN })).to.deep.equal([]);
    const { hostKey: _k, ...noKey } = base();
    expect(errorsOf({ ...noKey, insecureIgnoreHostKey: UNKNOWN })).to.deep.equal([]);
  });

  it("never repeats a secret (or any value) in a reason", () => {
    const sentinel = "SENTINEL-s3cr3t-4f1c";
    const cases: Record<string, unknown>[] = [
      { ...base(), privateKey: `${sentinel}` },
      { ...base(), privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${sentinel}` },
      { ...base(), privateKey: `ssh-ed25519 AAAA${sentinel}` },
      { ...base(), privateKeyPassphrase: 42, password: { sentinel } },
      { ...base(), password: 7, privateKeyPassphrase: sentinel, privateKey: encryptedPair.public },
      { ...base(), host: `${sentinel} x`, user: `${sentinel};`, hostKey: `ssh-ed25519 ${sentinel}` },
      { ...base(), hostKey: `SHA256:${sentinel}`, agentSocket: sentinel },
      { ...base(), [sentinel]: sentinel, proxy: { host: sentinel, password: sentinel } },
    ];
    for (const c of cases) {
      const errs = errorsOf(c);
      expect(errs.length, JSON.stringify(Object.keys(c))).to.be.greaterThan(0);
      for (const e of errs) expect(e.reason).to.not.contain("s3cr3t");
    }
  });
});
