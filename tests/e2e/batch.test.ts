// Changes to one host from one process, many at once (as the engine issues them): provider/orchestration/ probes them
// together and runs them one after the other in one script. Real probes and apply scripts on a lab host, through a Host that
// runs commands with nsenter and counts them.
import { expect } from "chai";
import { ApplyResult } from "../../provider/orchestration/round";
import { applyNetwork, deleteNetwork, readNetwork } from "../../provider/orchestration/network";
import { applyRange } from "../../provider/orchestration/range";
import { sleep } from "../../provider/orchestration/queue";
import { buildRangeSpec } from "../../provider/model/dhcpRange";
import { NetworkError } from "../../provider/orchestration/errors";
import { observe } from "../../provider/orchestration/probe";
import { isOurDnsmasq } from "../../provider/observe/observed";
import { buildNetworkSpec, NetworkSpec } from "../../provider/model/network";
import { networkPaths, nftChainId, NFT_TABLE_REF } from "../../provider/naming";
import { nsenterHost } from "../support/countingHost";
import { Host } from "../../provider/host/host";
import { labHosts, sh } from "./support";

const countingHost = () => nsenterHost("h1");

const specOf = (i: number, cidr = `10.241.${i}.0/24`): NetworkSpec =>
  buildNetworkSpec({ mode: "nat", ipv4: { cidr } }, `hzb${i}`).spec!;

describe("many changes to one host at once, from one process", function () {
  this.timeout(120_000);
  const specs = Array.from({ length: 8 }, (_, i) => specOf(i));
  const extra = [specOf(9, "10.241.100.0/24"), specOf(8, "10.241.100.128/25")];
  let initial: string;

  before(async () => {
    await labHosts(2);
    initial = await sh("h1", "ls -A /var/lib/virtnet 2>/dev/null | wc -l; sysctl -n net.ipv4.ip_forward");
  });

  after(async () => {
    const h = countingHost();
    for (const s of [...specs, ...extra]) await deleteNetwork(h, s.name, s.bridge.name);
  });

  it("on a host without virtnet, eight creates at once: one probe, one script; the first prepares the host", async () => {
    // The host-wide steps (directories, forwarding, the nft table, the boot entry) are the first plan's only.
    expect(initial.split("\n")[0], "nothing of virtnet on h1 before this suite").to.equal("0");
    const h = countingHost();
    const results = await Promise.all(specs.map((s) => applyNetwork(h, s)));
    expect(results.every((r) => r.actions.includes("create bridge"))).to.equal(true);
    expect({ probes: h.counts["probe host"], scripts: h.counts.apply }).to.deep.equal({
      probes: 1,
      scripts: 1,
    });
    const hostWide = (r: ApplyResult) =>
      r.actions.filter((a) =>
        /forwarding|nft table|directory \/(var\/lib|run)\/virtnet$|virtnet-restore/.test(a),
      );
    expect(hostWide(results[0])).to.include.members([
      "enable IPv4 forwarding",
      `create nft table ${NFT_TABLE_REF}`,
      "create directory /var/lib/virtnet",
    ]);
    expect(results.slice(1).map(hostWide)).to.deep.equal(Array(7).fill([]));
    expect(await sh("h1", "sysctl -n net.ipv4.ip_forward")).to.equal("1\n");
    for (const s of specs) {
      expect(await sh("h1", `cat /sys/class/net/${s.bridge.name}/ifalias`)).to.equal(`virtnet:${s.name}\n`);
      expect(
        await sh("h1", `nft list chain inet virtnet ${nftChainId(s.name)}.forward >/dev/null && echo ok`),
      ).to.equal("ok\n");
      expect(
        isOurDnsmasq(await observe(h, s.name, s.bridge.name), networkPaths(s.name).dnsmasqConf),
      ).to.equal(true);
    }
  });

  it("knows the dnsmasq it started by the record it left; a record that does not match gets the full check", async () => {
    const h = countingHost();
    const { name, bridge } = specs[0];
    const paths = networkPaths(name);
    const o = await observe(h, name, bridge.name);
    expect(o.dnsmasq?.startedByVirtnet).to.equal(true);
    const record = await sh("h1", `cat ${paths.dnsmasqPid}.started`);
    expect(record).to.equal(`${o.dnsmasq!.pid} ${o.dnsmasq!.start}\n`);
    await sh("h1", `echo '${o.dnsmasq!.pid} 1' > ${paths.dnsmasqPid}.started`);
    const checked = await observe(h, name, bridge.name);
    expect(checked.dnsmasq?.startedByVirtnet ?? false).to.equal(false);
    expect(checked.dnsmasq?.argv).to.include(`--conf-file=${paths.dnsmasqConf}`);
    expect(isOurDnsmasq(checked, paths.dnsmasqConf)).to.equal(true);
    await sh("h1", `printf '%s' '${record}' > ${paths.dnsmasqPid}.started`);
  });

  it("reads of eight networks at once (a refresh) share one probe, each seeing its own network in sync", async () => {
    const h = countingHost();
    const status = await Promise.all(specs.map((s) => readNetwork(h, s)));
    expect(h.counts["probe host"]).to.equal(1);
    expect(status.map((st) => ({ exists: st.exists, drift: st.drift }))).to.deep.equal(
      specs.map(() => ({ exists: true, drift: [] })),
    );
  });

  it("a change planned after another in the same round sees it: an overlapping subnet is refused", async () => {
    const h = countingHost();
    // Both new: the second is planned from the same probe, with the first's record added.
    const settled = await Promise.allSettled([applyNetwork(h, extra[0]), applyNetwork(h, extra[1])]);
    expect(h.counts["probe host"], "one probe for both").to.equal(1);
    expect(settled[0].status).to.equal("fulfilled");
    const err = settled[1].status === "rejected" ? (settled[1].reason as NetworkError) : undefined;
    expect(err?.message).to.match(/overlaps virtnet network "hzb9"/);
    expect(await sh("h1", `ip link show ${extra[1].bridge.name} 2>/dev/null | wc -l`)).to.equal("0\n");
    await deleteNetwork(h, extra[0].name, extra[0].bridge.name);
  });

  it("a failure in the middle of a round is undone alone; the changes after it are planned again and succeed", async () => {
    const h = countingHost();
    const changed = specs.map((s) => ({ ...s, bridge: { ...s.bridge, mtu: 1400 } }));
    const settled = await Promise.allSettled(
      changed.map((s, i) => applyNetwork(h, s, i === 3 ? { failAfter: "set bridge MTU" } : {})),
    );
    expect(settled.map((r) => r.status)).to.deep.equal([
      ...Array(3).fill("fulfilled"),
      "rejected",
      ...Array(4).fill("fulfilled"),
    ]);
    const mtus = await sh("h1", specs.map((s) => `cat /sys/class/net/${s.bridge.name}/mtu`).join("; "));
    expect(mtus.trim().split("\n")).to.deep.equal([
      "1400",
      "1400",
      "1400",
      "1500",
      "1400",
      "1400",
      "1400",
      "1400",
    ]);
  });

  it("a dnsmasq that fails to start is found at the round's end: its network is undone, the others stay", async () => {
    const h = countingHost();
    const trio = [12, 13, 14].map((i) => specOf(i, `10.241.${100 + i}.0/24`));
    // Where hzb13's dnsmasq writes its pid file, a directory: dnsmasq itself refuses to start.
    const pidPath = networkPaths(trio[1].name).dnsmasqPid;
    await sh("h1", `mkdir -p ${pidPath}`);
    try {
      const settled = await Promise.allSettled(trio.map((s) => applyNetwork(h, s)));
      expect(settled.map((r) => r.status)).to.deep.equal(["fulfilled", "rejected", "fulfilled"]);
      expect(h.counts.apply, "one script for the three").to.equal(1);
      const err = (settled[1] as PromiseRejectedResult).reason as NetworkError;
      expect(err.message).to.match(
        new RegExp(`network "${trio[1].name}": start dnsmasq: failed \\(exit 70\\): .*dnsmasq.*pid`, "is"),
      );
      expect(err.message).to.include("every change made before it was undone");
      const links = await sh("h1", "ip -o link show | awk -F': ' '{print $2}'");
      expect(links).to.not.include(trio[1].bridge.name);
      for (const s of [trio[0], trio[2]]) {
        expect(links).to.include(s.bridge.name);
        expect(
          isOurDnsmasq(await observe(h, s.name, s.bridge.name), networkPaths(s.name).dnsmasqConf),
        ).to.equal(true);
      }
    } finally {
      await sh("h1", `rmdir ${pidPath}`);
      for (const s of trio) await deleteNetwork(h, s.name, s.bridge.name);
    }
  });

  it("a script cut short mid-round (killed): the network it was at gets the error, the others plan again", async () => {
    const inner = countingHost();
    let cut = false;
    // The round's script kills itself as its second segment starts. (Its own label: its own queue.)
    const h: Host = {
      label: `${inner.label} (cut)`,
      run: (script, opts) => {
        if (!opts?.stdin || cut) return inner.run(script, opts);
        cut = true;
        const marker = "vn_seg=2; echo 'virtnet-segment: 2' >&2\n";
        expect(String(opts.stdin)).to.include(marker);
        return inner.run(script, {
          ...opts,
          stdin: String(opts.stdin).replace(marker, () => `${marker}kill -KILL $$\n`),
        });
      },
      runChecked: (script, opts) => inner.runChecked(script, opts),
      writeFile: (path, content, opts) => inner.writeFile(path, content, opts),
      readFile: (path) => inner.readFile(path),
    };
    const pair = [specOf(10, "10.241.110.0/24"), specOf(11, "10.241.111.0/24")];
    const settled = await Promise.allSettled(pair.map((s) => applyNetwork(h, s)));
    expect(settled[0].status).to.equal("fulfilled");
    const err = settled[1].status === "rejected" ? (settled[1].reason as NetworkError) : undefined;
    expect(err?.message).to.match(new RegExp(`network "${pair[1].name}": apply: failed \\(exit 137\\)`));
    expect(inner.counts.apply, "the first network's change ran again").to.equal(2);
    expect(await sh("h1", `ip link show ${pair[0].bridge.name} >/dev/null && echo ok`)).to.equal("ok\n");
    for (const s of pair) await deleteNetwork(inner, s.name, s.bridge.name);
    // The killed script's directory for its background starts went with the next round.
    expect(await sh("h1", "ls -d /tmp/virtnet-round.* 2>/dev/null || echo none")).to.equal("none\n");
  });

  it("reads a round's networks again while the host is idle; their ranges' round plans from that read", async () => {
    const h = countingHost();
    const pair = [specOf(15, "10.241.115.0/24"), specOf(16, "10.241.116.0/24")];
    const rangeOf = (s: NetworkSpec, start: number) =>
      buildRangeSpec(
        {
          start: `${s.ipv4!.cidr.split(".0/")[0]}.${start}`,
          end: `${s.ipv4!.cidr.split(".0/")[0]}.${start + 9}`,
        },
        `${s.name}-r${start}`,
        {
          cidr: s.ipv4!.cidr,
          gateway: s.ipv4!.gateway,
        },
      ).spec!;
    // Until the n-th read-ahead's probe has ended (it starts once the round's results are out).
    const readAheadDone = async (n: number) => {
      for (let i = 0; i < 1000 && (h.ended["probe ahead"] ?? 0) < n; i++) await sleep(10);
    };
    // One range more on each network, in one round; then the probes and scripts so far, and the ranges each has.
    const addRanges = async (start: number, probes: number, scripts: number, ranges: number) => {
      await Promise.all(
        pair.map((s) => applyRange(h, { name: s.name, bridge: s.bridge.name }, rangeOf(s, start))),
      );
      expect({ probes: h.counts["probe host"], scripts: h.counts.apply }).to.deep.equal({ probes, scripts });
      for (const s of pair)
        expect(await sh("h1", `grep -c '^dhcp-range=' ${networkPaths(s.name).dnsmasqConf}`)).to.equal(
          `${ranges}\n`,
        );
    };
    try {
      await Promise.all(pair.map((s) => applyNetwork(h, s)));
      await readAheadDone(1);
      expect(h.counts["probe ahead"], "one read of both networks once the round was done").to.equal(1);
      await addRanges(100, 1, 2, 1);

      // Another process changes the host after the read: the round's script finds a new token and the round
      // plans again from a probe of its own, at once.
      await readAheadDone(2);
      await sh("h1", "echo elsewhere > /var/lib/virtnet/generation");
      await addRanges(120, 2, 4, 2);
    } finally {
      for (const s of pair) await deleteNetwork(h, s.name, s.bridge.name);
    }
  });

  it("deletes all eight at once and leaves the host as it was", async () => {
    const h = countingHost();
    await Promise.all(specs.map((s) => deleteNetwork(h, s.name, s.bridge.name)));
    // One probe, one script: the last network's delete takes the host-wide pieces away at the script's end.
    expect({ probes: h.counts["probe host"], scripts: h.counts.apply }).to.deep.equal({
      probes: 1,
      scripts: 1,
    });
    expect(await sh("h1", "nft list table inet virtnet >/dev/null 2>&1 || echo gone")).to.equal("gone\n");
    expect(
      await sh("h1", "ls -A /var/lib/virtnet 2>/dev/null | wc -l; sysctl -n net.ipv4.ip_forward"),
    ).to.equal(initial);
    expect(await sh("h1", "ip -o link show | grep -c ' vn-hzb' || true")).to.equal("0\n");
  });
});
