import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { HostCommandError, LocalHost, SudoPasswordError } from "../../../provider/host";
import { CommandHost, RawResult } from "../../../provider/host/command";
import { redact } from "../../../provider/host/errors";

/** A host whose every command "ran" through sudo and got the given result. */
class FakeSudoHost extends CommandHost {
  readonly label = "vnplain@h1:22";
  protected readonly useSudo = true;
  protected readonly userName = "vnplain";
  commands: string[] = [];
  constructor(private readonly result: RawResult) {
    super();
  }
  protected async exec(commandLine: string): Promise<RawResult> {
    this.commands.push(commandLine);
    return this.result;
  }
}

describe("host/LocalHost", () => {
  let dir: string;
  const host = new LocalHost();
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "vn-local-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("run resolves on any exit code; runChecked throws HostCommandError with step and stderr tail", async () => {
    const r = await host.run("echo out; echo err >&2; exit 3");
    expect(r).to.deep.equal({ code: 3, stdout: "out\n", stderr: "err\n" });
    const err = await host.runChecked("set -e\necho boom >&2; false").catch((e) => e);
    expect(err).to.be.instanceOf(HostCommandError);
    expect(err).to.include({ hostLabel: "local", step: "set -e", code: 1, stderrTail: "boom" });
    const named = await host.runChecked("exit 5", { step: "apply nft ruleset" }).catch((e) => e);
    expect(named.message).to.equal("local: apply nft ruleset failed (exit 5)");
  });

  it("reports a signal as 128+n", async () => {
    const r = await host.run("kill -TERM $$");
    expect(r.code).to.equal(143);
  });

  it("runs under a wrap prefix", async () => {
    const wrapped = new LocalHost({ wrap: ["env", "VN_WRAPPED=yes"] });
    expect(wrapped.label).to.equal("local:env VN_WRAPPED=yes");
    expect((await wrapped.run('echo "$VN_WRAPPED $1"', { args: ["x"] })).stdout).to.equal("yes x\n");
  });

  it("writeFile writes atomically with the mode, readFile reads it back; missing file is null", async () => {
    const p = path.join(dir, "conf");
    await host.writeFile(p, "one\n", { mode: 0o640 });
    expect(fs.statSync(p).mode & 0o7777).to.equal(0o640);
    expect(await host.readFile(p)).to.equal("one\n");
    await host.writeFile(p, Buffer.from("two"));
    expect(fs.statSync(p).mode & 0o7777).to.equal(0o600);
    expect(await host.readFile(p)).to.equal("two");
    expect(await host.readFile(path.join(dir, "missing"))).to.equal(null);
    expect(fs.readdirSync(dir)).to.deep.equal(["conf"]); // no temp file left behind
  });

  it("writeFile replaces a symlink at the path, never writing through it", async () => {
    const target = path.join(dir, "target");
    const targetDir = path.join(dir, "tdir");
    fs.writeFileSync(target, "untouched");
    fs.mkdirSync(targetDir);
    const link = path.join(dir, "link");
    fs.symlinkSync(target, link);
    await host.writeFile(link, "new", { mode: 0o644 });
    expect(fs.lstatSync(link).isSymbolicLink()).to.equal(false);
    expect(fs.readFileSync(link, "utf8")).to.equal("new");
    expect(fs.readFileSync(target, "utf8")).to.equal("untouched");

    const dirLink = path.join(dir, "dirlink");
    fs.symlinkSync(targetDir, dirLink);
    await host.writeFile(dirLink, "x");
    expect(fs.lstatSync(dirLink).isFile()).to.equal(true);
    expect(fs.readdirSync(targetDir)).to.deep.equal([]);

    fs.symlinkSync(path.join(dir, "nowhere"), path.join(dir, "dangling"));
    expect(await host.readFile(path.join(dir, "dangling"))).to.equal(null);
  });

  it("writeFile fails clearly when the directory is missing, and refuses relative paths", async () => {
    const err = await host.writeFile(path.join(dir, "no/such/file"), "x").catch((e) => e);
    expect(err).to.be.instanceOf(HostCommandError);
    expect(err.message).to.contain("does not exist");
    expect(fs.existsSync(path.join(dir, "no"))).to.equal(false);
    const rel = await host.writeFile("relative/file", "x").catch((e) => e);
    expect(rel.message).to.contain("absolute");
    const asDir = await host.writeFile(dir, "x").catch((e) => e);
    expect(asDir.message).to.contain("is a directory");
  });

  it("writes and reads binary-safe content of any size through stdin", async () => {
    const p = path.join(dir, "big");
    const big = Buffer.alloc(3 * 1024 * 1024, "ab'\"$\n");
    await host.writeFile(p, big);
    expect(fs.readFileSync(p).equals(big)).to.equal(true);
    expect((await host.readFile(p))?.length).to.equal(big.length);
  });

  it("refuses a command line over the one-argument limit with a hint", async () => {
    const err = await host.run("true", { args: ["x".repeat(200 * 1024)], step: "huge" }).catch((e) => e);
    expect(err).to.be.instanceOf(HostCommandError);
    expect(err.message).to.contain("128 KiB").and.contain("stdin");
  });

  it("turns sudo's 'a password is required' into a clear SudoPasswordError", async () => {
    const fake = new FakeSudoHost({
      code: 1,
      stdout: Buffer.alloc(0),
      stderr: Buffer.from("sudo: a password is required\n"),
    });
    const err = await fake.run("id -u").catch((e) => e);
    expect(err).to.be.instanceOf(SudoPasswordError).and.instanceOf(HostCommandError);
    expect(err.message).to.contain("sudo requires a password for user vnplain").and.contain("NOPASSWD");
    expect(fake.commands).to.deep.equal(["sudo -n -- /bin/sh -c 'id -u' virtnet"]);
    const ok = new FakeSudoHost({ code: 1, stdout: Buffer.alloc(0), stderr: Buffer.from("other\n") });
    expect((await ok.run("false")).code).to.equal(1);
  });

  it("redact removes secrets and their lines", () => {
    const key = "-----BEGIN KEY-----\nAAAAsecretline1\nBBBBsecretline2\n-----END KEY-----";
    const out = redact(`x ${key} y AAAAsecretline1 pw=hunter22`, [key, "hunter22", undefined]);
    expect(out).to.not.contain("secretline").and.not.contain("hunter22");
  });
});
