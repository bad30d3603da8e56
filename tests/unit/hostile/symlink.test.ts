// Files virtnet writes on a host, with a symlink planted in their place (issue 7: "never following a
// symlink planted in their place"). Real generated apply scripts run with sh in a new network namespace (as
// the apply-script tests in tests/unit/network do); the files live in a temp dir.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { NetworkPaths, networkPaths } from "../../../provider/naming";
import { parseProbe } from "../../../provider/observe/parse";
import { probeArgs, PROBE_SCRIPT } from "../../../provider/ops/probe";
import { Action } from "../../../provider/ops/action";
import * as ops from "../../../provider/ops/ops";
import { renderApplyScript } from "../../../provider/ops/script";

const sh = (script: string, args: string[]) =>
  spawnSync("unshare", ["--net", "/bin/sh", "-c", script, "virtnet", ...args], { encoding: "utf8" });

/** Runs actions the way lifecycle.runPlan does: probe, then the apply script with the probe's hash. */
function apply(actions: Action[], paths: NetworkPaths) {
  const args = probeArgs("none", "vn-none", paths);
  const probe = sh(PROBE_SCRIPT, args);
  return sh(renderApplyScript(actions, true), [
    ...args,
    parseProbe(probe.stdout, "none", "vn-none").generation,
    "",
  ]);
}

/** Paths of a network whose state directory is `dir` (the probe reads them; the scripts write them). */
function pathsIn(dir: string): NetworkPaths {
  const real = networkPaths("hzsym");
  return {
    ...real,
    stateDir: dir,
    runDir: dir,
    dnsmasqConf: path.join(dir, "dnsmasq.conf"),
    dnsmasqPid: path.join(dir, "dnsmasq.pid"),
    addnHosts: path.join(dir, "hosts"),
    appliedSpec: path.join(dir, "network.json"),
    dhcpHosts: path.join(dir, "dhcp-hosts"),
    rangesDir: path.join(dir, "ranges"),
    leases: path.join(dir, "dnsmasq.leases"),
  };
}

function listing(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}

describe("files virtnet writes, with a symlink planted in their place", () => {
  let root: string;
  let state: string;
  let victimDir: string;
  let victim: string;
  const secret = "root:$y$secret-hash:19000:0:99999:7:::\n";

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "hz-symlink-"));
    state = path.join(root, "state");
    victimDir = path.join(root, "etc");
    fs.mkdirSync(state);
    fs.mkdirSync(victimDir);
    victim = path.join(victimDir, "shadow");
    fs.writeFileSync(victim, secret, { mode: 0o600 });
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  for (const file of ["dnsmasq.conf", "hosts", "network.json"]) {
    it(`replaces a symlink at ${file} (to a victim file) and leaves the victim untouched`, () => {
      const target = path.join(state, file);
      fs.symlinkSync(victim, target);
      const before = fs.statSync(victim);
      const r = apply([ops.writeFile(target, "new content\n", undefined)], pathsIn(state));
      expect(r.status, r.stderr).to.equal(0);
      expect(fs.readFileSync(victim, "utf8")).to.equal(secret);
      expect(fs.statSync(victim).mtimeMs).to.equal(before.mtimeMs);
      expect((fs.statSync(victim).mode & 0o777).toString(8)).to.equal("600");
      const st = fs.lstatSync(target);
      expect(st.isFile() && !st.isSymbolicLink(), "a regular file now").to.equal(true);
      expect((st.mode & 0o777).toString(8)).to.equal("644");
      expect(fs.readFileSync(target, "utf8")).to.equal("new content\n");
      expect(listing(state), "no temp file left").to.deep.equal([file]);
    });
  }

  it("a symlink to a victim directory at dnsmasq.conf: nothing is written into that directory", () => {
    const target = path.join(state, "dnsmasq.conf");
    fs.symlinkSync(victimDir, target);
    const r = apply([ops.writeFile(target, "interface=vn-hzsym\n", undefined)], pathsIn(state));
    // `mv -f tmp link` moves the temp file INTO the directory the link points at (mv without -T).
    expect(listing(victimDir), `exit ${r.status}; victim directory`).to.deep.equal(["shadow"]);
    expect(fs.lstatSync(target).isSymbolicLink() ? "still a symlink" : "replaced").to.equal("replaced");
  });

  it("the probe does not read a victim file through a symlink planted at dnsmasq.conf", () => {
    const paths = pathsIn(state);
    fs.symlinkSync(victim, paths.dnsmasqConf);
    const observed = parseProbe(
      sh(PROBE_SCRIPT, probeArgs("none", "vn-none", paths)).stdout,
      "none",
      "vn-none",
    );
    // What the planner does with it: the "previous content" of the file is the victim's, and the undo of the
    // write puts it back, as a world-readable regular file, if a later step fails.
    const actions = [
      ops.writeFile(paths.dnsmasqConf, "interface=vn-hzsym\n", observed.conf),
      { name: "start dnsmasq", run: "false" },
    ];
    const r = apply(actions, paths);
    expect(r.status).to.equal(70); // the step failed and everything was undone
    const leaked = fs.existsSync(paths.dnsmasqConf) && fs.readFileSync(paths.dnsmasqConf, "utf8") === secret;
    expect(
      { probeReadTheVictim: observed.conf === secret, victimCopiedWorldReadable: leaked },
      "the probe followed the planted symlink",
    ).to.deep.equal({ probeReadTheVictim: false, victimCopiedWorldReadable: false });
  });
});
