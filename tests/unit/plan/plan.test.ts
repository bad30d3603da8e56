import { expect } from "chai";
import { emptyObserved } from "../support/observed";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { bridgeAlias, networkPaths, RUN_DIR, STATE_DIR } from "../../../provider/naming";
import { ObservedNetwork } from "../../../provider/observe/observed";
import { parseProbe } from "../../../provider/observe/parse";
import { probeArgs, PROBE_SCRIPT } from "../../../provider/ops/probe";
import { appliedRecord, planApply, planDelete } from "../../../provider/plan/network";
import { INOTIFY_RESERVE, INOTIFY_STEP } from "../../../provider/plan/hostState";
import * as ops from "../../../provider/ops/ops";
import { renderApplyScript } from "../../../provider/ops/script";
import { buildNetworkSpec, NetworkSpec } from "../../../provider/model/network";
import { renderDnsmasqConf, renderHostsFile } from "../../../provider/render/dnsmasq";
import { nftChainNames, renderNftables } from "../../../provider/render/nftables";
import { firewallOf } from "../../../provider/observe/observed";
import {
  renderNetworkRestore,
  renderRestoreEntry,
  renderSystemdUnit,
} from "../../../provider/render/restore";

const spec: NetworkSpec = buildNetworkSpec({ mode: "nat", ipv4: { cidr: "10.50.1.0/24" } }, "lab").spec!;
const paths = networkPaths("lab");

function emptyHost(): ObservedNetwork {
  return emptyObserved({ foreignIpv4: [{ cidr: "198.19.0.11/24", dev: "eth0" }] });
}

/** What the host looks like after a successful apply of `spec`. */
function appliedHost(s: NetworkSpec): ObservedNetwork {
  return {
    ...emptyHost(),
    bridge: {
      kind: "bridge",
      alias: bridgeAlias(s.name),
      mac: s.bridge.macAddress,
      mtu: 1500,
      up: true,
      stp: false,
      forwardDelay: 0,
      ports: [],
    },
    bridgeIpv4: [`${s.ipv4!.gateway}/${s.ipv4!.prefixLength}`],
    nftListing: renderNftables(s)!,
    firewall: { ...firewallOf(emptyHost()), virtnetTable: true },
    ipForward: true,
    forwardMarker: true,
    dnsmasq: { pid: 42, exe: "/usr/sbin/dnsmasq", argv: ["dnsmasq", `--conf-file=${paths.dnsmasqConf}`] },
    conf: renderDnsmasqConf(s, paths),
    hosts: renderHostsFile(s),
    networks: [appliedRecord(s)],
    restore: {
      systemd: false,
      unitEnabled: false,
      wantsDir: false,
      entry: renderRestoreEntry(),
      network: renderNetworkRestore(s, [], paths),
    },
    dirs: [STATE_DIR, `${STATE_DIR}/networks`, paths.stateDir, RUN_DIR, `${RUN_DIR}/networks`, paths.runDir],
  };
}

const names = (p: { actions: { name: string }[] }) => p.actions.map((a) => a.name);

describe("planner", () => {
  it("builds everything on an empty host, in libvirt's order, each action with an undo", () => {
    const plan = planApply(spec, emptyHost(), paths);
    expect(plan.errors).to.deep.equal([]);
    expect(names(plan)).to.deep.equal([
      `create directory ${STATE_DIR}`,
      `create directory ${STATE_DIR}/networks`,
      `create directory ${paths.stateDir}`,
      `create directory ${RUN_DIR}`,
      `create directory ${RUN_DIR}/networks`,
      `create directory ${paths.runDir}`,
      "create bridge",
      "create nft table inet virtnet",
      "apply firewall",
      "enable IPv4 forwarding",
      `write ${paths.dnsmasqConf}`,
      `write ${paths.addnHosts}`,
      "start dnsmasq",
      `write ${paths.restoreScript}`,
      `write ${STATE_DIR}/restore`,
      `write ${paths.appliedSpec}`,
    ]);
    for (const a of plan.actions) expect(a.undo, a.name).to.be.a("string");
  });

  it("plans nothing when the host already matches", () => {
    expect(planApply(spec, appliedHost(spec), paths).actions).to.deep.equal([]);
  });

  it("repairs only what drifted", () => {
    const host = appliedHost(spec);
    delete host.nftListing;
    delete host.dnsmasq;
    expect(names(planApply(spec, host, paths))).to.deep.equal(["apply firewall", "start dnsmasq"]);
  });

  it("changes a DNS record with a reload, not a restart", () => {
    const s2 = buildNetworkSpec(
      {
        mode: "nat",
        ipv4: { cidr: "10.50.1.0/24" },
        dns: { hosts: [{ ip: "10.50.1.9", hostnames: ["db"] }] },
      },
      "lab",
    ).spec!;
    expect(names(planApply(s2, appliedHost(spec), paths))).to.deep.equal([
      `write ${paths.addnHosts}`,
      "reload dnsmasq",
      `write ${paths.appliedSpec}`,
    ]);
  });

  it("updates mode and subnet in place: the bridge is never recreated", () => {
    const s2 = buildNetworkSpec(
      { mode: "route", ipv4: { cidr: "10.50.2.0/24" }, bridge: { mtu: 1400 } },
      "lab",
    ).spec!;
    const plan = names(planApply(s2, appliedHost(spec), paths));
    expect(plan).to.include.members([
      "set bridge MTU",
      "remove address 10.50.1.1/24",
      "add address 10.50.2.1/24",
      "apply firewall",
    ]);
    expect(plan).to.not.include("create bridge");
  });

  it("restarts dnsmasq onto a moved gateway (it binds the addresses it finds at start)", () => {
    const s2 = buildNetworkSpec(
      { mode: "nat", ipv4: { cidr: "10.50.1.0/24", gateway: "10.50.1.254" } },
      "lab",
    ).spec!;
    const plan = names(planApply(s2, appliedHost(spec), paths));
    expect(plan).to.include.ordered.members([
      "remove address 10.50.1.1/24",
      "add address 10.50.1.254/24",
      "stop dnsmasq",
      `write ${paths.dnsmasqConf}`,
      "start dnsmasq",
    ]);
  });

  it("refuses a bridge that is not virtnet's, before any change", () => {
    const host = emptyHost();
    host.bridge = {
      kind: "bridge",
      mac: "52:54:00:00:00:01",
      mtu: 1500,
      up: true,
      stp: false,
      forwardDelay: 0,
      ports: [],
    };
    const plan = planApply(spec, host, paths);
    expect(plan.actions).to.deep.equal([]);
    expect(plan.errors.join()).to.match(/vn-lab already exists and is not managed by virtnet/);
  });

  it("refuses a subnet that overlaps an address or route of the host", () => {
    const host = emptyHost();
    host.foreignIpv4.push({ cidr: "10.50.0.0/16", dev: "eth1" });
    expect(planApply(spec, host, paths).errors.join()).to.match(/overlaps 10\.50\.0\.0\/16 on eth1/);
  });

  it("refuses a subnet that overlaps another virtnet network", () => {
    const host = emptyHost();
    host.networks.push({ name: "other", mode: "nat", bridge: "vn-other", cidr: "10.50.1.128/25" });
    expect(planApply(spec, host, paths).errors.join()).to.match(/overlaps virtnet network "other"/);
  });

  it("names missing tools and the missing dnsmasq user", () => {
    const host = emptyHost();
    host.missing = ["missing-tool nft", "missing-user dnsmasq"];
    const errors = planApply(spec, host, paths).errors.join("\n");
    expect(errors).to.match(/command "nft" is not installed/);
    expect(errors).to.match(/user "dnsmasq" does not exist/);
  });

  it("warns when another table's forward chain drops, and says how to fix it", () => {
    const host = emptyHost();
    host.forwardChainsWithDrop = ["ip filter FORWARD"];
    const plan = planApply(spec, host, paths);
    expect(plan.errors).to.deep.equal([]);
    expect(plan.warnings.join()).to.match(/"ip filter FORWARD" has policy drop.*DOCKER-USER -i vn-lab/);
  });

  it("never stops a dnsmasq that is not ours, even if the pid file points at it", () => {
    const host = appliedHost(spec);
    host.dnsmasq = { pid: 1, exe: "/usr/sbin/sshd", argv: ["sshd"] };
    expect(names(planApply(spec, host, paths))).to.deep.equal(["start dnsmasq"]);
    expect(names(planDelete("lab", "vn-lab", host, paths))).to.not.include("stop dnsmasq");
  });

  describe("inotify instances (one per dnsmasq; dnsmasq refuses to start past the limit)", () => {
    const others = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ name: `o${i}`, mode: "nat", bridge: `vn-o${i}` }));
    const raise = (p: { actions: { name: string; run: string }[] }) =>
      p.actions.find((a) => a.name.startsWith("raise fs.inotify"));

    it("leaves the limit alone while the host has room for this dnsmasq plus the reserve", () => {
      const host = { ...emptyHost(), networks: others(63), inotify: { limit: 128 } };
      expect(raise(planApply(spec, host, paths))).to.equal(undefined);
    });

    it("raises it past virtnet's dnsmasqs plus the reserve, in steps, recording the original value", () => {
      const host = { ...emptyHost(), networks: others(100), inotify: { limit: 128 } };
      const a = raise(planApply(spec, host, paths))!;
      expect(101 + INOTIFY_RESERVE).to.be.within(129, 2 * INOTIFY_STEP);
      expect(a.name).to.equal(`raise fs.inotify.max_user_instances to ${2 * INOTIFY_STEP}`);
      expect(a.run).to.include("fs.inotify.max_user_instances=256").and.include("'128 256");
      const again = { ...host, inotify: { limit: 256, marker: { original: 128, raised: 256 } } };
      expect(raise(planApply(spec, again, paths)), "in sync").to.equal(undefined);
      // The next 90 networks need no raise (each would plan alone, from its own probe); the 92nd does.
      const more = (n: number) => ({ ...again, networks: others(n) });
      expect(raise(planApply(spec, more(191), paths)), "191 others").to.equal(undefined);
      expect(raise(planApply(spec, more(192), paths))!.run).to.include("'128 384");
    });

    it("the last network's delete puts the original back, unless someone changed it since", () => {
      const raised = {
        ...appliedHost(spec),
        inotify: { limit: 165, marker: { original: 128, raised: 165 } },
      };
      const back = planDelete("lab", "vn-lab", raised, paths).actions;
      const step = back.find((a) => a.name === "restore fs.inotify.max_user_instances")!;
      expect(step.run).to.include("fs.inotify.max_user_instances=128").and.include("rm -f");
      const changed = { ...raised, inotify: { limit: 4096, marker: { original: 128, raised: 165 } } };
      const keep = planDelete("lab", "vn-lab", changed, paths).actions;
      expect(keep.find((a) => a.name === "restore fs.inotify.max_user_instances")!.run).to.not.include(
        "sysctl",
      );
    });
  });

  it("deletes everything, restores forwarding and removes virtnet's directories when it was the last network", () => {
    const plan = planDelete("lab", "vn-lab", appliedHost(spec), paths);
    expect(names(plan)).to.deep.equal([
      "stop dnsmasq",
      "delete bridge",
      "remove firewall",
      "remove files",
      "bridge deleted",
      "remove virtnet directories",
      "restore IPv4 forwarding",
      "remove nft table inet virtnet",
      `remove ${STATE_DIR}/restore`,
      "remove directory /var/lib/virtnet",
    ]);
    const nftSteps = plan.actions.filter((a) => /firewall|nft/.test(a.name));
    expect(nftSteps.map((a) => [a.name, !!a.shared])).to.deep.equal([
      ["remove firewall", false],
      ["remove nft table inet virtnet", true],
    ]);
  });

  it("keeps the shared nft table while it holds chains of anything else", () => {
    const host = appliedHost(spec);
    const own = nftChainNames("lab").map((c) => `inet virtnet ${c}`);
    host.firewall = { ...host.firewall!, nftChains: [...own, "inet virtnet other_123456.forward"] };
    expect(names(planDelete("lab", "vn-lab", host, paths))).to.not.include("remove nft table inet virtnet");
    host.firewall = { ...host.firewall!, nftChains: own };
    expect(names(planDelete("lab", "vn-lab", host, paths))).to.include("remove nft table inet virtnet");
  });

  it("installs and enables a systemd unit on systemd hosts, and removes it with the last network", () => {
    const host = emptyHost();
    host.restore = { systemd: true, unitEnabled: false, wantsDir: true };
    const install = planApply(spec, host, paths).actions;
    expect(names({ actions: install })).to.include.members([
      "write /etc/systemd/system/virtnet-restore.service",
      "reload systemd's units",
      "enable virtnet-restore.service",
    ]);
    // An undo that puts the old unit file back has systemd reread it too.
    const write = install.find((a) => a.name === "write /etc/systemd/system/virtnet-restore.service")!;
    expect(write.undo).to.match(/ && systemctl daemon-reload$/);
    const applied = appliedHost(spec);
    applied.restore = { ...applied.restore, systemd: true, unit: "x", unitEnabled: true, wantsDir: true };
    const removal = names(planDelete("lab", "vn-lab", applied, paths));
    expect(removal.slice(removal.indexOf("disable virtnet-restore.service"))).to.include.ordered.members([
      "disable virtnet-restore.service",
      "remove /etc/systemd/system/virtnet-restore.service",
      "reload systemd's units",
    ]);
  });

  it("leaves systemd's units alone when the unit is already as rendered", () => {
    const applied = appliedHost(spec);
    applied.restore = { ...applied.restore, systemd: true, unitEnabled: true, wantsDir: true };
    applied.restore.unit = renderSystemdUnit();
    expect(names(planApply(spec, applied, paths))).to.not.include("reload systemd's units");
  });

  it("writes no restore script for a transient network (autostart: false)", () => {
    const transient = buildNetworkSpec(
      { mode: "nat", ipv4: { cidr: "10.50.1.0/24" }, autostart: false },
      "lab",
    ).spec!;
    expect(names(planApply(transient, emptyHost(), paths))).to.not.include(`write ${paths.restoreScript}`);
  });

  it("keeps forwarding and shared directories while another forwarding network remains", () => {
    const host = appliedHost(spec);
    host.networks.push({ name: "other", mode: "route", bridge: "vn-other", cidr: "10.60.0.0/24" });
    expect(names(planDelete("lab", "vn-lab", host, paths))).to.deep.equal([
      "stop dnsmasq",
      "delete bridge",
      "remove firewall",
      "remove files",
      "bridge deleted",
    ]);
  });

  it("deletes nothing of a bridge whose alias is not ours", () => {
    const host = appliedHost(spec);
    host.bridge!.alias = "someone-else";
    const plan = planDelete("lab", "vn-lab", host, paths);
    expect(names(plan)).to.not.include("delete bridge");
    expect(names(plan)).to.not.include("bridge deleted");
    expect(plan.warnings.join()).to.match(/left alone/);
  });
});

describe("apply script", () => {
  // Runs real generated scripts with sh, each in a new empty network namespace so the probe sees the same
  // (empty) network every time whatever the machine is doing; the writes go to a temp dir.
  const sh = (script: string, args: string[]) =>
    spawnSync("unshare", ["--net", "/bin/sh", "-c", script, "virtnet", ...args], { encoding: "utf8" });
  const hostile = [
    "$(touch /tmp/virtnet-pwned)",
    "`touch /tmp/virtnet-pwned`",
    "a'b\"c\\d",
    "; rm -rf / ;",
    "line1\nline2\n dhcp-script=/tmp/x\n",
    '"; flush ruleset;',
    "ünïcödé ＄(x)",
  ].join("\n");

  it("refuses a TFTP root the host does not have, before any action, as the probe reads it", () => {
    const pxe = buildNetworkSpec(
      { mode: "nat", ipv4: { cidr: "10.50.1.0/24" }, tftp: { root: os.tmpdir() }, bootp: { file: "pxe.0" } },
      "lab",
    ).spec!;
    const probed = (root: string) =>
      parseProbe(
        sh(PROBE_SCRIPT, probeArgs("lab", "vn-lab", paths, "", undefined, root)).stdout,
        "lab",
        "vn-lab",
      );
    expect(probed(os.tmpdir()).tftpRootFound).to.equal(true);
    const missing = probed("/nonexistent-virtnet-tftp");
    expect(missing.tftpRootFound).to.equal(false);
    const plan = planApply(pxe, { ...emptyHost(), tftpRootFound: false }, paths);
    expect(plan.errors).to.deep.equal([
      `tftp.root ${os.tmpdir()} is not a directory on the host: make it first`,
    ]);
    expect(planApply(pxe, { ...emptyHost(), tftpRootFound: true }, paths).errors).to.deep.equal([]);
  });

  it("deletes the bridge while the other steps run; one already gone is fine, one the kernel keeps fails", () => {
    const args = probeArgs("none", "vn-none", networkPaths("none"));
    const gen = parseProbe(sh(PROBE_SCRIPT, args).stdout, "none", "vn-none").generation;
    const host = { ...emptyHost(), generation: gen, dirs: [] };
    const bridge = (b: string) => ({
      ...appliedHost(spec).bridge!,
      alias: bridgeAlias("none"),
      ports: [],
      kind: b,
    });
    // In a new network namespace each time.
    const del = (name: string) =>
      planDelete("none", name, { ...host, bridge: bridge("bridge") }, networkPaths("none"));
    const setup = "ip link add vn-none type bridge || exit 9\n";
    const check =
      " || exit $?\nif ip link show vn-none >/dev/null 2>&1; then echo 'still there' >&2; exit 5; fi";
    const ok = sh(`${setup}(\n${renderApplyScript(del("vn-none").actions, false)})${check}`, [
      ...args,
      gen,
      "",
    ]);
    expect(ok.status, ok.stderr).to.equal(0);
    expect(ok.stderr).to.not.include("still there");
    const gone = sh(renderApplyScript(del("vn-gone").actions, false), [...args, gen, ""]);
    expect(gone.status, gone.stderr).to.equal(0);
    const kept = sh(renderApplyScript(del("lo").actions, false), [...args, gen, ""]);
    expect(kept.status).to.equal(70);
    expect(kept.stderr).to.include("virtnet-step-failed: bridge deleted");
  });

  it("stops the probe's dnsmasq by pid and start time; another start time (a reused pid) gets the full check", async () => {
    const args = probeArgs("none", "vn-none", networkPaths("none"));
    const gen = parseProbe(sh(PROBE_SCRIPT, args).stdout, "none", "vn-none").generation;
    const child = spawn("sleep", ["30"]);
    const exited = new Promise((resolve) => child.on("exit", resolve));
    try {
      const pid = child.pid!;
      const start = Number(fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")[19]);
      const stop = (t: number) =>
        sh(renderApplyScript([{ name: "stop dnsmasq", run: `dnsmasq_stop ${pid} ${t}` }], false), [
          ...args,
          gen,
          "",
        ]);
      // Not the process the probe saw, and no dnsmasq of this network's: nothing is signalled.
      expect(stop(start + 1).status).to.equal(0);
      expect(child.exitCode ?? child.signalCode).to.equal(null);
      expect(stop(start).status).to.equal(0);
      expect(await exited).to.equal(null); // killed by a signal
      expect(child.signalCode).to.equal("SIGTERM");
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("a restart's stop only signals dnsmasq; the start after it waits until the old one is gone", async () => {
    const args = probeArgs("none", "vn-none", networkPaths("none"));
    const gen = parseProbe(sh(PROBE_SCRIPT, args).stdout, "none", "vn-none").generation;
    // A process that takes 0.3 s to exit after SIGTERM.
    const child = spawn("sh", ["-c", "trap 'sleep 0.3; exit 0' TERM; while :; do sleep 0.05; done"]);
    await new Promise((r) => setTimeout(r, 100));
    try {
      const pid = child.pid!;
      const start = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")[19];
      const alive = `{ read -r a b st rest < /proc/${pid}/stat && [ "$st" != Z ]; } 2>/dev/null`;
      const steps = [
        { name: "stop", run: `dnsmasq_stop_begin ${pid} ${start}` },
        { name: "look", run: `if ${alive}; then echo "exiting" >&2; fi` },
        { name: "wait", run: "dnsmasq_stopped" },
        { name: "look again", run: `if ${alive}; then echo "still there" >&2; else echo "gone" >&2; fi` },
      ];
      const r = sh(renderApplyScript(steps, false), [...args, gen, ""]);
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stderr.split("\n").filter((l) => /^(exiting|gone|still there)$/.test(l))).to.deep.equal([
        "exiting",
        "gone",
      ]);
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("a delete's stops only signal each dnsmasq; the round ends once all of them are gone", async () => {
    const args = probeArgs("none", "vn-none", networkPaths("none"));
    const gen = parseProbe(sh(PROBE_SCRIPT, args).stdout, "none", "vn-none").generation;
    // Two processes that take 0.3 s to exit after SIGTERM.
    const children = [0, 1].map(() =>
      spawn("sh", ["-c", "trap 'sleep 0.3; exit 0' TERM; while :; do sleep 0.05; done"]),
    );
    await new Promise((r) => setTimeout(r, 100));
    try {
      const procs = children.map((c) => ({
        pid: c.pid!,
        start: fs.readFileSync(`/proc/${c.pid}/stat`, "utf8").split(") ")[1].split(" ")[19],
      }));
      const alive = (pid: number) =>
        `{ read -r a b st rest < /proc/${pid}/stat && [ "$st" != Z ]; } 2>/dev/null`;
      const steps = [
        ...procs.map((p) => ops.dnsmasqStop(p)),
        {
          name: "look",
          run: `if ${alive(procs[0].pid)} && ${alive(procs[1].pid)}; then echo "exiting" >&2; fi`,
        },
      ];
      expect(steps[0].run).to.match(/^dnsmasq_stop_late /);
      const r = sh(renderApplyScript(steps, false), [...args, gen, ""]);
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stderr).to.include("exiting");
      // The script has ended: both are gone (zombies at most, until spawn reaps them).
      const states = procs.map((p) => {
        try {
          return fs.readFileSync(`/proc/${p.pid}/stat`, "utf8").split(") ")[1].split(" ")[0];
        } catch {
          return "gone";
        }
      });
      expect(
        states.every((st) => st === "Z" || st === "gone"),
        states.join(" "),
      ).to.equal(true);
    } finally {
      for (const c of children) c.kill("SIGKILL");
    }
  });

  it("writes each file with its mode whatever the caller's umask, leaving no temporary file", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "virtnet-script-"));
    try {
      const args = probeArgs("none", "vn-none", networkPaths("none"));
      const gen = parseProbe(sh(PROBE_SCRIPT, args).stdout, "none", "vn-none").generation;
      const a = path.join(dir, "a.conf");
      const b = path.join(dir, "b.sh");
      const c = path.join(dir, "c.json");
      // c's usual temporary name is taken (a file left by a killed run): write_file falls back to mktemp.
      const actions = [
        { name: "leave a file where c's temporary file goes", run: `: > ${c}.vn$$`, undo: `rm -f ${c}.vn$$` },
        ops.writeFile(a, "a\n", undefined),
        ops.writeFile(b, "b\n", undefined, { mode: "0755" }),
        ops.writeFile(c, "c\n", undefined),
      ];
      const r = sh(`umask 077\n${renderApplyScript(actions, true)}`, [...args, gen, ""]);
      expect(r.status, r.stderr).to.equal(0);
      const mode = (f: string) => (fs.statSync(f).mode & 0o777).toString(8);
      expect([a, b, c].map((f) => [fs.readFileSync(f, "utf8"), mode(f)])).to.deep.equal([
        ["a\n", "644"],
        ["b\n", "755"],
        ["c\n", "644"],
      ]);
      const left = fs.readdirSync(dir).filter((f) => !["a.conf", "b.sh", "c.json"].includes(f));
      expect(left, "only the planted file").to.have.length(1);
      expect(left[0]).to.match(/^c\.json\.vn\d+$/);
      expect(fs.readFileSync(path.join(dir, left[0]), "utf8"), "left as it was").to.equal("");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("writes hostile content byte for byte and runs none of it", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "virtnet-script-"));
    try {
      const target = path.join(dir, "out.conf");
      const args = probeArgs("none", "vn-none", networkPaths("none"));
      const probe = sh(PROBE_SCRIPT, args);
      // The content is embedded in the script text by the planner's quoting, exactly as on a real host.
      const script = renderApplyScript([ops.writeFile(target, hostile, undefined)], true);
      const r = sh(script, [...args, parseProbe(probe.stdout, "none", "vn-none").generation, ""]);
      expect(r.status, r.stderr).to.equal(0);
      expect(fs.readFileSync(target, "utf8")).to.equal(hostile);
      expect((fs.statSync(target).mode & 0o777).toString(8)).to.equal("644");
      expect(fs.existsSync("/tmp/virtnet-pwned")).to.equal(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("undoes every action already done, newest first, when a later one fails", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "virtnet-script-"));
    try {
      const log = path.join(dir, "log");
      const args = probeArgs("none", "vn-none", networkPaths("none"));
      const probe = sh(PROBE_SCRIPT, args);
      const step = (n: number) => ({
        name: `step ${n}`,
        run: `echo do${n} >> ${log}`,
        undo: `echo undo${n} >> ${log}`,
      });
      const script = renderApplyScript([step(1), step(2), { name: "boom", run: "false" }, step(4)], true);
      const r = sh(script, [...args, parseProbe(probe.stdout, "none", "vn-none").generation, ""]);
      expect(r.status).to.equal(70);
      expect(r.stderr).to.include("virtnet-step-failed: boom");
      expect(fs.readFileSync(log, "utf8").split("\n").filter(Boolean)).to.deep.equal([
        "do1",
        "do2",
        "undo2",
        "undo1",
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("does nothing and asks for a new plan when the host changed since the probe", () => {
    const args = probeArgs("none", "vn-none", networkPaths("none"));
    const script = renderApplyScript([{ name: "touch", run: "touch /tmp/virtnet-should-not-exist" }], true);
    const r = sh(script, [...args, "0".repeat(64), ""]);
    expect(r.status).to.equal(75);
    expect(fs.existsSync("/tmp/virtnet-should-not-exist")).to.equal(false);
  });
});
