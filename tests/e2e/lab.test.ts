// The lab itself, on real namespaces: hosts with their own sshd, upstream, guests, DHCP, teardown.
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "ssh2";
import {
  guestAdd,
  guestAddr,
  guestDel,
  guestDhcp,
  guestExec,
  guestHostIfName,
  hostExec,
  hostReboot,
  LabStatus,
  labDown,
  labStatus,
  labUp,
  LAB_PASSWORD,
  upstreamExec,
} from "../lab/lab";

const CLI = path.resolve(__dirname, "../lab/cli.js");

function cli(...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 30000 });
}

/** The system ssh client, pinned to `hostKeyLine` for `address` in a known_hosts file of our own. */
function ssh(status: LabStatus, address: string, hostKeyLine: string, user: string, cmd: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lab-test-"));
  const knownHosts = path.join(dir, "known_hosts");
  fs.writeFileSync(knownHosts, `${address} ${hostKeyLine}\n`);
  try {
    return spawnSync(
      "ssh",
      [
        "-F",
        "/dev/null",
        "-i",
        status.privateKeyPath,
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        `UserKnownHostsFile=${knownHosts}`,
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "ConnectTimeout=5",
        `${user}@${address}`,
        cmd,
      ],
      { encoding: "utf8", timeout: 20000 },
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Password login with ssh2 (the provider's transport), host key pinned. */
function passwordExec(address: string, hostKeyLine: string, user: string, password: string, cmd: string) {
  const expected = Buffer.from(hostKeyLine.split(/\s+/)[1], "base64");
  return new Promise<{ code: number; out: string }>((resolve, reject) => {
    const c = new Client();
    c.on("ready", () => {
      c.exec(cmd, (err, stream) => {
        if (err) return reject(err);
        let out = "";
        stream.on("data", (d: Buffer) => (out += d.toString()));
        stream.stderr.on("data", (d: Buffer) => (out += d.toString()));
        stream.on("close", (code: number) => {
          c.end();
          resolve({ code, out });
        });
      });
    });
    c.on("error", reject);
    c.connect({
      host: address,
      port: 22,
      username: user,
      password,
      hostVerifier: (key: Buffer) => key.equals(expected),
      readyTimeout: 10000,
    });
  });
}

const canRun = process.getuid?.() === 0;

(canRun ? describe : describe.skip)("lab (real namespaces)", function () {
  this.timeout(60000);
  let status: LabStatus;

  before(async () => {
    await labDown();
    await labUp({ hosts: 2 });
    status = labStatus();
  });

  after(async () => {
    await labDown();
  });

  it("status has the contract fields, from the library and from `status --json`", () => {
    expect(status.hosts.map((h) => h.name)).to.deep.equal(["h1", "h2"]);
    for (const [i, h] of status.hosts.entries()) {
      expect(h).to.include({
        address: `198.18.0.${11 + i}`,
        port: 22,
        user: "root",
        uplinkAddress: `198.19.0.${11 + i}`,
      });
      expect(h.hostKey).to.match(/^ssh-ed25519 AAAA[A-Za-z0-9+/=]+( \S+)?$/);
      expect(h.hostKeySha256).to.match(/^SHA256:[A-Za-z0-9+/]{43}$/);
      expect(fs.existsSync(h.privateKeyPath)).to.equal(true);
    }
    expect(status.upstream).to.include({ address: "198.19.0.1", serverAddress: "198.51.100.1" });
    expect(status.users.map((u) => [u.name, u.sudo, u.password])).to.deep.equal([
      ["vnsudo", true, LAB_PASSWORD],
      ["vnplain", false, LAB_PASSWORD],
    ]);

    const r = cli("status", "--json");
    expect(r.status, r.stderr).to.equal(0);
    const json = JSON.parse(r.stdout);
    for (const h of json.hosts) {
      expect(Object.keys(h)).to.include.members([
        "name",
        "address",
        "port",
        "user",
        "privateKeyPath",
        "hostKey",
        "hostKeySha256",
        "uplinkAddress",
      ]);
    }
    expect(json).to.deep.equal(JSON.parse(JSON.stringify(status)));
  });

  it("gives each host its own host key, fingerprinted as ssh-keygen prints it", () => {
    const [h1, h2] = status.hosts;
    expect(h1.hostKey.split(" ")[1]).to.not.equal(h2.hostKey.split(" ")[1]);
    for (const h of status.hosts) {
      const r = spawnSync("ssh-keygen", ["-lf", "-"], { input: h.hostKey + "\n", encoding: "utf8" });
      expect(r.stdout.split(" ")[1]).to.equal(h.hostKeySha256);
    }
  });

  it("accepts a real ssh login per host with the client key and the pinned host key, and no other key", () => {
    const [h1, h2] = status.hosts;
    for (const h of status.hosts) {
      const r = ssh(status, h.address, h.hostKey, "root", "hostname; echo $VIRTNET_LAB_HOST");
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout).to.equal(`${h.name}\n${h.name}\n`);
    }
    const wrong = ssh(status, h1.address, h2.hostKey, "root", "true");
    expect(wrong.status).to.not.equal(0);
    expect(wrong.stderr).to.match(/host key/i);
  });

  it("has a sudo user and a plain user, by key and by password; root takes no password", async () => {
    const h = status.hosts[0];
    const sudo = ssh(status, h.address, h.hostKey, "vnsudo", "id -un; sudo -n id -u");
    expect(sudo.status, sudo.stderr).to.equal(0);
    expect(sudo.stdout).to.equal("vnsudo\n0\n");
    const plain = ssh(status, h.address, h.hostKey, "vnplain", "id -un; sudo -n true");
    expect(plain.stdout).to.equal("vnplain\n");
    expect(plain.status).to.not.equal(0);

    const byPassword = await passwordExec(h.address, h.hostKey, "vnplain", LAB_PASSWORD, "id -un");
    expect(byPassword).to.deep.equal({ code: 0, out: "vnplain\n" });
    let rootErr: unknown;
    await passwordExec(h.address, h.hostKey, "root", LAB_PASSWORD, "true").catch((e) => (rootErr = e));
    expect(String(rootErr)).to.match(/authentication methods failed/);
    // The machine's own /etc knows neither user.
    expect(fs.readFileSync("/etc/passwd", "utf8")).to.not.match(/^vn(sudo|plain):/m);
  });

  it("runs exec inside the host: own hostname, PID 1 sshd, private /etc, fresh /root", async () => {
    const r = await hostExec("h1", ["sh", "-c", "hostname; cat /proc/1/comm; ls -A /root | wc -l"]);
    expect(r).to.deep.include({ code: 0, stdout: "h1\nsshd\n0\n" });

    const file = `/etc/virtnet-lab-test-${process.pid}`;
    const w = await hostExec("h1", ["sh", "-c", `echo from-h1 > ${file}; cat ${file}`]);
    expect(w.stdout).to.equal("from-h1\n");
    expect((await hostExec("h2", ["test", "-e", file])).code).to.equal(1);
    expect(fs.existsSync(file)).to.equal(false);

    const input = await hostExec("h2", ["cat"], { input: "piped\n" });
    expect(input.stdout).to.equal("piped\n");
    expect((await hostExec("h2", ["sh", "-c", "exit 7"])).code).to.equal(7);
    const viaCli = cli("exec", "h2", "--", "sh", "-c", "hostname; exit 3");
    expect([viaCli.status, viaCli.stdout]).to.deep.equal([3, "h2\n"]);
  });

  it("lets hosts reach each other on the management network", async () => {
    const h2 = status.hosts[1];
    const r = await hostExec("h1", ["sh", "-c", `busybox nc -w 2 ${h2.address} 22 </dev/null | head -c 8`]);
    expect(r.stdout).to.equal("SSH-2.0-");
    const ping = await hostExec("h2", ["busybox", "ping", "-c1", "-W1", status.hosts[0].address]);
    expect(ping.code, ping.stdout + ping.stderr).to.equal(0);
  });

  it("reaches upstream from a host; upstream forwards nothing", async () => {
    const ping = await hostExec("h1", ["busybox", "ping", "-c1", "-W1", "198.19.0.1"]);
    expect(ping.code, ping.stdout + ping.stderr).to.equal(0);
    const server = await hostExec("h2", ["busybox", "ping", "-c1", "-W1", "198.51.100.1"]);
    expect(server.code, server.stdout + server.stderr).to.equal(0);
    const fwd = await upstreamExec(["sysctl", "-n", "net.ipv4.ip_forward"]);
    expect(fwd.stdout.trim()).to.equal("0");
  });

  it("attaches a guest to a bridge inside a host; static address; ping the bridge", async () => {
    const mk = await hostExec("h1", [
      "sh",
      "-c",
      "ip link add br-lab type bridge && ip addr add 10.88.0.1/24 dev br-lab && ip link set br-lab up",
    ]);
    expect(mk.code, mk.stderr).to.equal(0);
    let err: unknown;
    await guestAdd("g1", "h1", "br-none").catch((e) => (err = e));
    expect(String(err)).to.match(/bridge br-none does not exist on host h1/);

    await guestAdd("g1", "h1", "br-lab");
    const port = await hostExec("h1", ["ip", "-j", "link", "show", "dev", guestHostIfName("g1")]);
    expect(JSON.parse(port.stdout)[0]).to.include({ master: "br-lab", operstate: "UP" });
    await guestAddr("g1", "10.88.0.50/24", "10.88.0.1");
    const ping = await guestExec("g1", ["busybox", "ping", "-c1", "-W1", "10.88.0.1"]);
    expect(ping.code, ping.stdout + ping.stderr).to.equal(0);
  });

  it("gets a DHCP lease from a dnsmasq in the host", async () => {
    const dm = await hostExec("h1", [
      "dnsmasq",
      "--no-ping",
      "--user=root",
      "--port=0",
      "--interface=br-lab",
      "--bind-interfaces",
      "--dhcp-range=10.88.0.100,10.88.0.150,255.255.255.0,1h",
      "--dhcp-option=option:dns-server,10.88.0.1",
      "--dhcp-leasefile=/run/test-dnsmasq.leases",
      "--pid-file=/run/test-dnsmasq.pid",
    ]);
    expect(dm.code, dm.stderr).to.equal(0);
    await guestAdd("g2", "h1", "br-lab", { mac: "52:54:00:aa:bb:02" });
    const lease = await guestDhcp("g2", { timeoutMs: 15000 });
    expect(lease).to.deep.include({ prefix: 24, router: "10.88.0.1", dns: ["10.88.0.1"] });
    expect(lease.ip).to.match(/^10\.88\.0\.1([0-4]\d|50)$/);
    const addr = await guestExec("g2", ["ip", "-4", "-br", "addr", "show", "dev", "eth0"]);
    expect(addr.stdout).to.contain(`${lease.ip}/24`);
    const leases = await hostExec("h1", ["cat", "/run/test-dnsmasq.leases"]);
    expect(leases.stdout).to.contain(`52:54:00:aa:bb:02 ${lease.ip} g2`);
    // The machine's resolv.conf is untouched by the guest's DHCP client.
    expect(fs.readFileSync("/etc/resolv.conf", "utf8")).to.not.contain("10.88.0.1");

    expect(await guestDel("g2")).to.equal(true);
    const gone = await hostExec("h1", ["ip", "link", "show", "dev", guestHostIfName("g2")]);
    expect(gone.code, gone.stdout + gone.stderr).to.not.equal(0);
    expect(await guestDel("g2")).to.equal(false);
  });

  it("reports no lease when no DHCP server answers", async () => {
    await hostExec("h2", ["sh", "-c", "ip link add br-quiet type bridge && ip link set br-quiet up"]);
    await guestAdd("g3", "h2", "br-quiet");
    let err: unknown;
    await guestDhcp("g3", { timeoutMs: 1500 }).catch((e) => (err = e));
    expect(String(err)).to.match(/no DHCP lease/);
  });

  it("simulates a reboot: /etc survives, runtime state and bridges do not", async () => {
    const before = labStatus().hosts[1];
    await hostExec("h2", ["sh", "-c", "echo kept > /etc/reboot-test; echo lost > /tmp/reboot-test"]);
    const after = await hostReboot("h2");
    expect(after.pid).to.not.equal(before.pid);
    expect(after.hostKey).to.equal(before.hostKey);
    const r = await hostExec("h2", ["sh", "-c", "cat /etc/reboot-test; ls /tmp; ip link show br-quiet"]);
    expect(r.stdout).to.equal("kept\n");
    expect(r.code).to.not.equal(0);
    const login = ssh(status, after.address, after.hostKey, "root", "hostname");
    expect(login.stdout).to.equal("h2\n");
  });

  it("boots a host into systemd: Debian's units bring it up, a reboot shuts it down, the machine is untouched", async () => {
    const machine = () => fs.readFileSync("/proc/sys/kernel/pid_max", "utf8") + fs.existsSync("/dev/log");
    const before = machine();
    const h = await hostReboot("h2", { init: "systemd" });
    expect(h.init).to.equal("systemd");
    // The machine enables docker and firewalld; the host has its own /etc/systemd/system, which does not.
    const units = "systemctl is-active networking.service ssh.service docker.service firewalld.service";
    const r = await hostExec("h2", [
      "sh",
      "-c",
      `cat /proc/1/comm; systemctl is-system-running --wait; ${units}`,
    ]);
    expect(r.stdout).to.equal("systemd\nrunning\nactive\nactive\ninactive\ninactive\n");
    expect((await hostExec("h2", ["ip", "-4", "-o", "addr", "show", "dev", "eth0"])).stdout).to.include(
      h.uplinkAddress,
    ); // configured by networking.service from the host's /etc/network/interfaces
    const login = ssh(status, h.address, h.hostKey, "root", "hostname; echo $VIRTNET_LAB_HOST");
    expect(login.stdout).to.equal("h2\nh2\n");

    const again = await hostReboot("h2"); // systemctl reboot: units stopped, then a new boot
    expect(again.init).to.equal("systemd");
    const boots = await hostExec("h2", ["journalctl", "--list-boots"]);
    expect(boots.stdout.match(/^ *-?\d+ [0-9a-f]{32} /gm), boots.stdout).to.have.length(2);
    const shutdown = await hostExec("h2", ["journalctl", "-b", "-1", "-o", "cat", "-u", "ssh.service"]);
    expect(shutdown.stdout).to.match(/Stopped .*OpenBSD Secure Shell server/);
    // systemd-sysctl and the rest ran in the host only: the machine's kernel settings and /dev are as they were.
    expect(machine()).to.equal(before);
    expect((await hostReboot("h2", { init: "sshd" })).init).to.equal("sshd");
  });

  it("is a no-op to bring up again with the same host count", async () => {
    const pids = labStatus().hosts.map((h) => h.pid);
    const r = await labUp({ hosts: 2 });
    expect(r.reused).to.equal(true);
    expect(r.status.hosts.map((h) => h.pid)).to.deep.equal(pids);
  });

  it("puts back the machine-wide inotify limit a lab host changed (it is not per namespace)", async () => {
    const file = "/proc/sys/fs/inotify/max_user_instances";
    const before = fs.readFileSync(file, "utf8").trim();
    const r = await hostExec("h1", ["sysctl", "-qw", `fs.inotify.max_user_instances=${Number(before) + 7}`]);
    expect(r.code, r.stderr).to.equal(0);
    expect(fs.readFileSync(file, "utf8").trim(), "shared with this machine").to.equal(
      String(Number(before) + 7),
    );
    await labDown();
    expect(fs.readFileSync(file, "utf8").trim()).to.equal(before);
    await labUp({ hosts: 2 });
  });

  it("gives hosts a second uplink on request (eth1 into vnl-up2), kept through a reboot, gone with one uplink", async () => {
    const up = await labUp({ hosts: 2, uplinks: 2 });
    expect(up.reused).to.equal(false);
    expect(up.status.hosts[0].uplink2).to.deep.equal({ interface: "eth1", address: "198.19.1.11" });
    expect(up.status.upstream2).to.include({ namespace: "vnl-up2", serverAddress: "198.51.100.2" });
    const reachServer2 = async () => {
      const route = await hostExec("h1", ["ip", "-o", "route", "get", "198.51.100.2"]);
      expect(route.stdout).to.match(/ via 198\.19\.1\.1 dev eth1 /);
      const ping = await hostExec("h1", ["busybox", "ping", "-c", "1", "-W", "2", "198.51.100.2"]);
      expect(ping.code, ping.stdout).to.equal(0);
    };
    await reachServer2();
    expect((await hostExec("h1", ["ip", "-o", "route", "get", "198.51.100.1"])).stdout).to.match(
      / dev eth0 /,
    );
    await hostReboot("h1");
    await reachServer2();
    const back = await labUp({ hosts: 2 });
    expect(back.reused).to.equal(false);
    expect(back.status.upstream2).to.equal(undefined);
    expect(spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout).to.not.match(/^vnl-up2/m);
  });

  it("tears down completely, twice, and then reports not up", () => {
    for (let i = 0; i < 2; i++) {
      const r = cli("down");
      expect(r.status, r.stderr).to.equal(0);
    }
    const netns = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout;
    expect(netns).to.not.match(/^vnl-/m);
    expect(fs.readdirSync("/sys/class/net").filter((n) => n.startsWith("vnl-"))).to.deep.equal([]);
    expect(spawnSync("nft", ["list", "tables"], { encoding: "utf8" }).stdout).to.not.contain("vnl");
    expect(fs.existsSync(status.stateDir)).to.equal(false);
    const cgroups = spawnSync("sh", ["-c", "find /sys/fs/cgroup -maxdepth 2 -name 'vnl-*'"], {
      encoding: "utf8",
    });
    expect(cgroups.stdout).to.equal("");
    const st = cli("status", "--json");
    expect(st.status).to.not.equal(0);
    expect(st.stderr).to.match(/not up/);
    expect(() => labStatus()).to.throw(/not up/);
  });
});
