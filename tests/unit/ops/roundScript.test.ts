// Several plans in one apply script (a round): each segment with its own variables and undo, a failure that
// stops the round, bridges deleted together while the segments run, and the generation token. Run for real with sh in a
// private network and mount namespace (privateHost.ts).
import { expect } from "chai";
import { quote } from "shell-quote";
import { networkPaths, STATE_DIR } from "../../../provider/naming";
import { probeArgs } from "../../../provider/ops/probe";
import { Action } from "../../../provider/ops/action";
import { linkCreate, makeDir, removeTrees, writeFile } from "../../../provider/ops/ops";
import { parseRoundOutput, renderRoundScript, Segment } from "../../../provider/ops/script";
import { PrivateHost } from "../support/privateHost";

describe("round script (several plans, one script)", function () {
  this.timeout(20_000);
  let host: PrivateHost;
  const log = "/var/lib/round.log";

  before(async () => {
    host = await PrivateHost.start();
  });
  after(() => host.close());
  beforeEach(() => host.must(`rm -f ${log} ${STATE_DIR}/generation`));

  const step = (name: string): Action => ({
    name,
    run: `echo "do ${name} $br" >> ${log}`,
    undo: `echo "undo ${name} $br" >> ${log}`,
  });
  const segArgs = (name: string, failAfter = "") => [
    ...probeArgs(name, `vn-${name}`, networkPaths(name)),
    failAfter,
  ];
  const run = (segments: Segment[], names: string[], expected = "", next = "") =>
    host.sh(renderRoundScript(segments), [expected, next, ...names.flatMap((n) => segArgs(n))]);
  const logLines = () => host.must(`cat ${log} 2>/dev/null || true`).split("\n").filter(Boolean);
  // Runs of a tool, counted: a wrapper in BIN logs each run's arguments, then runs the real tool. A script sees
  // the wrappers when it starts with underCounters.
  const BIN = "/var/lib/bin";
  const countRuns = (tool: string): string => {
    host.must(
      `mkdir -p ${BIN} && printf '#!/bin/sh\\necho "$*" >> ${BIN}/${tool}.runs\\nexec %s "$@"\\n' "$(command -v ${tool})" > ${BIN}/${tool} && chmod +x ${BIN}/${tool} && : > ${BIN}/${tool}.runs`,
    );
    return `${BIN}/${tool}.runs`;
  };
  const underCounters = (script: string) => `export PATH=${BIN}:$PATH\n${script}`;
  const tokenNow = () => host.must(`cat ${STATE_DIR}/generation 2>/dev/null || true`).trim();
  /** One plan alone, as the host's current token allows, under the counting wrappers. */
  const runAlone = (actions: Action[], network: string, failAfter = "") =>
    host.sh(underCounters(renderRoundScript([{ actions, undo: true }])), [
      tokenNow(),
      "",
      ...segArgs(network, failAfter),
    ]);

  it("runs each segment with its own network's variables, in order, and leaves the token it was given", () => {
    const r = run(
      [
        { actions: [step("a1"), step("a2")], undo: true },
        { actions: [step("b1")], undo: true },
      ],
      ["a", "b"],
      "",
      "token-2",
    );
    expect(r.status, r.stderr).to.equal(0);
    expect(logLines()).to.deep.equal(["do a1 vn-a", "do a2 vn-a", "do b1 vn-b"]);
    expect(host.must(`cat ${STATE_DIR}/generation`)).to.equal("token-2\n");
  });

  it("a failing segment is undone alone; the ones before it stay, the ones after it do not run", () => {
    const boom: Action = { name: "boom", run: "echo 'no space left' >&2; false" };
    const r = run(
      [
        { actions: [step("a1")], undo: true },
        { actions: [step("b1"), boom, step("b3")], undo: true },
        { actions: [step("c1")], undo: true },
      ],
      ["a", "b", "c"],
      "",
      "token-3",
    );
    expect(r.status).to.equal(70);
    expect(logLines()).to.deep.equal(["do a1 vn-a", "do b1 vn-b", "undo b1 vn-b"]);
    const out = parseRoundOutput(r.stderr)!;
    expect(out.stoppedAt).to.equal(2);
    expect([...out.failed]).to.deep.equal([[2, "boom"]]);
    expect(out.stderr.get(2)).to.include("no space left");
    expect(out.stderr.get(1) ?? "").to.not.include("no space left");
    // Segment 1 changed the host, so the token moved.
    expect(host.must(`cat ${STATE_DIR}/generation`)).to.equal("token-3\n");
  });

  it("when a segment fails, the ones before it still get their staged rules and their late steps", () => {
    const staged: Action = {
      name: "apply firewall",
      run: "false",
      nft: "add table inet vnstop\nadd chain inet vnstop ca\n",
    };
    const late: Action = { name: "late", run: `echo "late $br" >> ${log}`, atRoundEnd: true };
    const boom: Action = { name: "boom", run: "false" };
    const r = run(
      [
        { actions: [staged, late], undo: true },
        { actions: [step("b1"), boom], undo: true },
      ],
      ["a", "b"],
      tokenNow(),
    );
    expect(r.status).to.equal(70);
    expect(parseRoundOutput(r.stderr)!.stoppedAt).to.equal(2);
    expect(logLines()).to.deep.equal(["do b1 vn-b", "undo b1 vn-b", "late vn-a"]);
    expect(
      host.must("nft list chain inet vnstop ca >/dev/null && echo ok; nft delete table inet vnstop"),
    ).to.equal("ok\n");
  });

  it("deletes the bridges of all its segments together; one the kernel keeps fails its segment alone", () => {
    host.must("for b in vn-a vn-b vn-c vn-other; do ip link add $b type bridge || exit 1; done");
    const del = (bridge: string): Action[] => [
      { name: "delete bridge", run: ":", deletesBridge: bridge },
      step(`files of ${bridge}`),
      { name: "bridge deleted", run: `bridge_deleted ${bridge}`, atRoundEnd: true },
    ];
    const links = () => host.must("ip -o link show | awk -F': ' '{print $2}'").split("\n").filter(Boolean);
    // Three bridges: one kernel operation.
    const r = run(
      [
        { actions: del("vn-a"), undo: false },
        { actions: del("vn-b"), undo: false },
        { actions: del("vn-c"), undo: false },
      ],
      ["a", "b", "c"],
    );
    expect(r.status, r.stderr).to.equal(0);
    expect(links()).to.deep.equal(["lo", "vn-other"]);
    expect(logLines()).to.deep.equal([
      "do files of vn-a vn-a",
      "do files of vn-b vn-b",
      "do files of vn-c vn-c",
    ]);
    // The loopback device cannot be deleted: the group's deletion is refused as a whole, the bridges then go
    // one by one, and only the segment of lo fails, after every segment ran.
    host.must("ip link add vn-a type bridge && ip link add vn-b type bridge");
    const token = host.must(`cat ${STATE_DIR}/generation`).trim();
    const bad = run(
      [
        { actions: del("vn-a"), undo: false },
        { actions: del("lo"), undo: false },
        { actions: del("vn-b"), undo: false },
      ],
      ["a", "b", "c"],
      token,
    );
    expect(bad.status).to.equal(70);
    const out = parseRoundOutput(bad.stderr)!;
    expect(out.stoppedAt).to.equal(undefined);
    expect([...out.failed]).to.deep.equal([[2, "bridge deleted"]]);
    expect(out.stderr.get(2)).to.match(/not supported/i);
    expect(links()).to.deep.equal(["lo", "vn-other"]);
  });

  it("makes the new directories and bridges of its segments in one mkdir and one ip -batch; a stopped round keeps none it did not finish", () => {
    const ipRuns = countRuns("ip");
    const links = () =>
      host
        .must("ip -o link show | awk -F': ' '{print $2}' | grep vn-h | sort || true")
        .split("\n")
        .filter(Boolean);
    const make = (b: string): Action[] => [
      makeDir(`/var/lib/vnh/${b}`),
      makeDir(`/var/lib/vnh/${b}/sub`),
      linkCreate("create bridge", b, [`link add name ${b} type bridge`, `link set dev ${b} up`]),
      step(`after ${b}`),
    ];
    const mkdirRuns = countRuns("mkdir");
    const dirs = () => host.must("cd /var/lib/vnh && find . -mindepth 1 | sort").split("\n").filter(Boolean);
    host.must("rm -rf /var/lib/vnh && mkdir /var/lib/vnh");
    const segs = (): Segment[] => ["vn-h1", "vn-h2", "vn-h3"].map((b) => ({ actions: make(b), undo: true }));
    const round = (failAfter2 = "") =>
      host.sh(underCounters(renderRoundScript(segs())), [
        tokenNow(),
        "",
        ...segArgs("h1"),
        ...segArgs("h2", failAfter2),
        ...segArgs("h3"),
      ]);
    const ok = round();
    expect(ok.status, ok.stderr).to.equal(0);
    expect(links()).to.deep.equal(["vn-h1", "vn-h2", "vn-h3"]);
    expect(host.must(`grep -c batch ${ipRuns}`)).to.equal("1\n");
    expect(host.must(`grep -c vnh ${mkdirRuns}`)).to.equal("1\n");
    expect(dirs()).to.have.length(6);
    // Segment 2 fails: its own bridge goes with its undo, the one made for segment 3 (which did not run) goes too.
    host.must("ip link del vn-h1 && ip link del vn-h2 && ip link del vn-h3 && rm -rf /var/lib/vnh/*");
    const failed = round("after vn-h2");
    expect(failed.status).to.equal(70);
    expect(parseRoundOutput(failed.stderr)!.stoppedAt).to.equal(2);
    expect(links()).to.deep.equal(["vn-h1"]);
    expect(dirs()).to.deep.equal(["./vn-h1", "./vn-h1/sub"]);
    // A directory is there already (not virtnet's): the ones made for the round go, each segment makes its own
    // in its place, the third fails on it and leaves it.
    host.must("ip link del vn-h1 && rm -rf /var/lib/vnh/* && mkdir -p /var/lib/vnh/vn-h3/sub/theirs");
    const dirTaken = round();
    expect(dirTaken.status).to.equal(70);
    expect(parseRoundOutput(dirTaken.stderr)!.stoppedAt).to.equal(3);
    expect(links()).to.deep.equal(["vn-h1", "vn-h2"]);
    expect(dirs()).to.deep.equal([
      "./vn-h1",
      "./vn-h1/sub",
      "./vn-h2",
      "./vn-h2/sub",
      "./vn-h3",
      "./vn-h3/sub",
      "./vn-h3/sub/theirs",
    ]);
    // One is there already (not virtnet's): each segment makes its own in its place, and that one stays.
    host.must(
      "ip link del vn-h1 && ip link del vn-h2 && rm -rf /var/lib/vnh/* && ip link add vn-h2 type bridge && ip link set dev vn-h2 alias theirs",
    );
    const taken = round();
    expect(taken.status).to.equal(70);
    expect(parseRoundOutput(taken.stderr)!.stoppedAt).to.equal(2);
    expect(links()).to.deep.equal(["vn-h1", "vn-h2"]);
    expect(host.must("ip -o link show vn-h2")).to.include("alias theirs");
    expect(dirs()).to.deep.equal(["./vn-h1", "./vn-h1/sub"]);
    host.must("ip link del vn-h1 && ip link del vn-h2 && rm -rf /var/lib/vnh");
  });

  it("applies the nft transactions of its segments as one; a refused one fails and undoes its segment alone", () => {
    const nftRuns = countRuns("nft");
    const chain = (c: string) => `add table inet vnround\nadd chain inet vnround ${c}\n`;
    const rules = (seg: string, text: string): Action[] => [
      step(`bridge of ${seg}`),
      { name: "apply firewall", run: "false", nft: text, undo: `echo "undo firewall $br" >> ${log}` },
      step(`dnsmasq of ${seg}`),
    ];
    const runCounted = (segments: Segment[], token: string) =>
      host.sh(underCounters(renderRoundScript(segments)), [
        token,
        "",
        ...["a", "b", "c"].flatMap((n) => segArgs(n)),
      ]);
    const chains = () =>
      host.must("nft list table inet vnround 2>/dev/null | grep -o 'chain [a-z0-9]*' || true");

    const ok = runCounted(
      [
        { actions: rules("a", chain("ca")), undo: true },
        { actions: rules("b", chain("cb")), undo: true },
        { actions: rules("c", chain("cc")), undo: true },
      ],
      tokenNow(),
    );
    expect(ok.status, ok.stderr).to.equal(0);
    expect(chains()).to.equal("chain ca\nchain cb\nchain cc\n");
    expect(host.must(`wc -l < ${nftRuns}`), "one nft run").to.equal("1\n");
    // Every step of every segment ran in order; the rules went in after them.
    expect(logLines()).to.have.length(6);

    host.must(`rm -f ${log}; : > ${nftRuns}; nft delete table inet vnround`);
    const bad = runCounted(
      [
        { actions: rules("a", chain("ca")), undo: true },
        { actions: rules("b", "add chain inet nosuchtable cb\n"), undo: true },
        { actions: rules("c", chain("cc")), undo: true },
      ],
      tokenNow(),
    );
    expect(bad.status).to.equal(70);
    const out = parseRoundOutput(bad.stderr)!;
    expect(out.stoppedAt).to.equal(undefined);
    expect([...out.failed]).to.deep.equal([[2, "apply firewall"]]);
    expect(out.stderr.get(2)).to.match(/nosuchtable|No such file/);
    expect(chains()).to.equal("chain ca\nchain cc\n");
    expect(logLines().filter((l) => l.startsWith("undo"))).to.deep.equal([
      "undo dnsmasq of b vn-b",
      "undo firewall vn-b",
      "undo bridge of b vn-b",
    ]);
  });

  it("puts the round's rules in while its background starts still run, and waits for them before it ends", () => {
    const chain = (c: string) => `add table inet vnround\nadd chain inet vnround ${c}\n`;
    // A start that lasts until the rules are in (5 s at most), as a dnsmasq start overlaps them.
    const start = (c: string): Action => ({
      name: "start dnsmasq",
      run: `sh -c 'i=0; while [ $i -lt 50 ]; do nft list chain inet vnround ${c} >/dev/null 2>&1 && { echo "rules before start ${c} ended" >> ${log}; exit 0; }; sleep 0.1; i=$((i+1)); done; echo "start ${c} ended first" >> ${log}'`,
      background: true,
    });
    const seg = (c: string): Segment => ({
      actions: [{ name: "apply firewall", run: "false", nft: chain(c), undo: "true" }, start(c)],
      undo: true,
    });
    const r = run([seg("ca"), seg("cb")], ["a", "b"], tokenNow());
    expect(r.status, r.stderr).to.equal(0);
    expect(logLines().sort()).to.deep.equal(["rules before start ca ended", "rules before start cb ended"]);
    host.must("nft delete table inet vnround");
  });

  it("runs a segment marked inOrder as if alone: its firewall and its start in place, the others' at the end", () => {
    const token = tokenNow();
    const r = run(
      [
        {
          actions: [
            { name: "apply firewall", run: `echo "firewall $br" >> ${log}`, nft: "add table inet vnx\n" },
            { name: "start dnsmasq", run: `echo "start $br" >> ${log}`, background: true },
            step("forwarding"),
          ],
          undo: true,
          inOrder: true,
        },
        {
          actions: [{ name: "apply firewall", run: "false", nft: "add table inet vnorder\n" }, step("b1")],
          undo: true,
        },
      ],
      ["a", "b"],
      token,
    );
    expect(r.status, r.stderr).to.equal(0);
    expect(logLines()).to.deep.equal(["firewall vn-a", "start vn-a", "do forwarding vn-a", "do b1 vn-b"]);
    expect(
      host.must("nft list table inet vnorder >/dev/null && echo ok; nft delete table inet vnorder"),
    ).to.equal("ok\n");
  });

  it("writes a file that is not there in place (no mv), one that is there through a temporary name", () => {
    const mvRuns = countRuns("mv");
    host.must(
      "rm -rf /var/lib/vnw /var/lib/vnold; mkdir -p /var/lib/vnold && printf 'old\\n' > /var/lib/vnold/c",
    );
    const write = (path: string, mode: string, text: string, was?: string): Action => ({
      name: `write ${path}`,
      run: `write_file ${path} ${mode} ${quote([text])}`,
      undo: was === undefined ? `rm -f ${path}` : `write_file ${path} ${mode} ${quote([was])}`,
    });
    const actions: Action[] = [
      { name: "create directory", run: "make_dir 0755 /var/lib/vnw", undo: "rmdir /var/lib/vnw" },
      write("/var/lib/vnw/a.json", "0644", '{"a": 1}\n'),
      write("/var/lib/vnw/b.sh", "0700", "echo b\n"),
      write("/var/lib/vnold/c", "0644", "c\n", "old\n"),
      write("/var/lib/vnold/d.sh", "0755", "echo d\n"),
    ];
    const runWith = (failAfter: string) => runAlone(actions, "w", failAfter);
    const r = runWith("");
    expect(r.status, r.stderr).to.equal(0);
    expect(
      host.must("cat /var/lib/vnw/a.json /var/lib/vnw/b.sh /var/lib/vnold/c /var/lib/vnold/d.sh"),
    ).to.equal('{"a": 1}\necho b\nc\necho d\n');
    expect(host.must("stat -c '%a %n' /var/lib/vnw/* /var/lib/vnold/* | sort")).to.equal(
      "644 /var/lib/vnold/c\n644 /var/lib/vnw/a.json\n700 /var/lib/vnw/b.sh\n755 /var/lib/vnold/d.sh\n",
    );
    expect(host.must("ls -A /var/lib/vnw /var/lib/vnold")).to.not.match(/\.vn\d|XXXX/);
    // Only the file that was there before went through mv.
    const moves = host.must(`grep -e /var/lib/vnw -e /var/lib/vnold ${mvRuns} || true`);
    expect(moves).to.match(/^-f -T \/var\/lib\/vnold\/c\.\S+ \/var\/lib\/vnold\/c\n$/);
    // Undone: the new files go, the old one is back, the directory made goes.
    host.must("rm -rf /var/lib/vnw /var/lib/vnold/d.sh; printf 'old\\n' > /var/lib/vnold/c");
    const failed = runWith("write /var/lib/vnold/d.sh");
    expect(failed.status).to.equal(70);
    expect(host.must("ls -d /var/lib/vnw /var/lib/vnold/d.sh 2>/dev/null || echo gone")).to.equal("gone\n");
    expect(host.must("cat /var/lib/vnold/c")).to.equal("old\n");
  });

  it("makes directories next to each other with one mkdir; a failure part way through removes only those it made", () => {
    const mkdirRuns = countRuns("mkdir");
    host.must("rm -rf /var/lib/vnd");
    const dirs = ["/var/lib/vnd", "/var/lib/vnd/a", "/var/lib/vnd/b", "/var/lib/vnd/b/c"];
    const actions: Action[] = [...dirs.map((d) => makeDir(d)), step("after")];
    const runWith = (failAfter: string) => runAlone(actions, "d", failAfter);
    const ok = runWith("");
    expect(ok.status, ok.stderr).to.equal(0);
    expect(host.must("find /var/lib/vnd -type d -perm 755 | sort")).to.equal(dirs.join("\n") + "\n");
    expect(host.must(`grep -c vnd ${mkdirRuns}`)).to.equal("1\n");
    // Undone after a later step: all go.
    host.must("rm -rf /var/lib/vnd");
    expect(runWith("after").status).to.equal(70);
    expect(host.must("ls -d /var/lib/vnd 2>/dev/null || echo gone")).to.equal("gone\n");
    // One of them appeared since the probe (mkdir fails on it, makes the others): those it made go, that one stays.
    host.must("rm -rf /var/lib/vnd && mkdir -p /var/lib/vnd/a && touch /var/lib/vnd/a/theirs");
    const failed = runWith("");
    expect(failed.status).to.equal(70);
    expect(failed.stderr).to.include("create directory /var/lib/vnd");
    expect(host.must("find /var/lib/vnd | sort")).to.equal(
      "/var/lib/vnd\n/var/lib/vnd/a\n/var/lib/vnd/a/theirs\n",
    );
  });

  it("removes files next to each other with one rm; a failure after it writes them all back", () => {
    const rmRuns = countRuns("rm");
    host.must(
      "mkdir -p /var/lib/vnrm && printf 'one\\n' > /var/lib/vnrm/a && printf 'two\\n' > /var/lib/vnrm/b",
    );
    const remove = (path: string, was: string): Action => ({
      name: `remove ${path}`,
      run: `rm -f ${path}`,
      undo: `write_file ${path} 0644 ${quote([was])}`,
      removes: path,
    });
    const actions = [remove("/var/lib/vnrm/a", "one\n"), remove("/var/lib/vnrm/b", "two\n"), step("after")];
    const runWith = (failAfter: string) => runAlone(actions, "rm", failAfter);
    const failed = runWith("after");
    expect(failed.status).to.equal(70);
    expect(host.must("cat /var/lib/vnrm/a /var/lib/vnrm/b")).to.equal("one\ntwo\n");
    expect(host.must(`grep -c vnrm ${rmRuns}`)).to.equal("1\n");
    const ok = runWith("");
    expect(ok.status, ok.stderr).to.equal(0);
    expect(host.must("ls -A /var/lib/vnrm")).to.equal("");
  });

  it("removes its deletes' directories in one rm at its end; a segment that stopped the round keeps its own", () => {
    const rmRuns = countRuns("rm");
    const trees = (n: string) => [`/var/lib/vntree/${n}`, `/run/vntree/${n}`];
    const fresh = () =>
      host.must(
        `rm -rf /var/lib/vntree /run/vntree; mkdir -p ${["a", "b", "c"].flatMap((n) => trees(n).map((d) => `${d}/sub`)).join(" ")}`,
      );
    // Each delete logs whether its own directories are still there when its last step runs.
    const remove = (n: string): Action => removeTrees("remove files", trees(n));
    const look = (n: string): Action => ({
      name: `look ${n}`,
      run: `if [ -d /var/lib/vntree/${n} ]; then echo "${n} there" >> ${log}; fi`,
    });
    const del = (n: string, extra: Action[] = []): Segment => ({
      actions: [remove(n), look(n), ...extra],
      undo: false,
    });
    fresh();
    const ok = host.sh(underCounters(renderRoundScript([del("a"), del("b"), del("c")])), [
      tokenNow(),
      "",
      ...["a", "b", "c"].flatMap((n) => segArgs(n)),
    ]);
    expect(ok.status, ok.stderr).to.equal(0);
    expect(logLines()).to.deep.equal(["a there", "b there", "c there"]);
    expect(host.must("ls -A /var/lib/vntree /run/vntree")).to.equal("/run/vntree:\n\n/var/lib/vntree:\n");
    expect(host.must(`grep -c vntree ${rmRuns}`)).to.equal("1\n");
    // b fails after its removal step: a's directories go, b's and c's stay.
    fresh();
    host.must(`rm -f ${log}`);
    const boom: Action = { name: "boom", run: "false" };
    const failed = host.sh(underCounters(renderRoundScript([del("a"), del("b", [boom]), del("c")])), [
      tokenNow(),
      "",
      ...["a", "b", "c"].flatMap((n) => segArgs(n)),
    ]);
    expect(failed.status).to.equal(70);
    expect(host.must("ls /var/lib/vntree")).to.equal("b\nc\n");
    // One plan alone removes its directories in its place, before its later steps.
    fresh();
    host.must(`rm -f ${log}`);
    expect(runAlone([remove("a"), look("a")], "a").status).to.equal(0);
    expect(logLines()).to.deep.equal([]);
  });

  it("writes a file nothing reads meanwhile in place (same inode, no mv), never through a symbolic link", () => {
    const mvRuns = countRuns("mv");
    host.must(
      "rm -rf /var/lib/vnu; mkdir -p /var/lib/vnu && printf 'old\\n' > /var/lib/vnu/conf && printf 'theirs\\n' > /var/lib/vnu/theirs && ln -s theirs /var/lib/vnu/link",
    );
    const inode = () => host.must("stat -c %i /var/lib/vnu/conf");
    const before = inode();
    const actions = [
      writeFile("/var/lib/vnu/conf", "new\n", "old\n", { unread: true }),
      writeFile("/var/lib/vnu/link", "mine\n", "theirs\n", { unread: true }),
    ];
    const r = runAlone(actions, "u");
    expect(r.status, r.stderr).to.equal(0);
    expect(host.must("cat /var/lib/vnu/conf")).to.equal("new\n");
    expect(inode()).to.equal(before);
    // The link was replaced by a file of its own (write_file's mv); the file it pointed at is untouched.
    expect(host.must("[ -L /var/lib/vnu/link ] && echo link || cat /var/lib/vnu/link")).to.equal("mine\n");
    expect(host.must("cat /var/lib/vnu/theirs")).to.equal("theirs\n");
    expect(host.must(`grep -c /var/lib/vnu/ ${mvRuns} || true`)).to.equal("1\n");
  });

  describe("background starts (Action.background)", () => {
    // A start that takes 0.3 s, logs when it is done, and fails when its network is named "b" and failB is set.
    const slowStart = (failB: boolean): Action => ({
      name: "start daemon",
      run: `sh -c ${quote([
        `sleep 0.3; ${failB ? `[ "$0" = vn-b ] && { echo "address in use on $0" >&2; exit 2; }; ` : ""}echo "started $0" >> ${log}`,
      ])} "$br"`,
      undo: `echo "undo start $br" >> ${log}`,
      background: true,
    });
    const plan = (seg: string, failB = false): Action[] => [
      step(`bridge of ${seg}`),
      slowStart(failB),
      step(`record of ${seg}`),
    ];

    it("overlap, and the script ends only when every one has started", () => {
      const r = run(
        [
          { actions: plan("a"), undo: true },
          { actions: plan("b"), undo: true },
          { actions: plan("c"), undo: true },
        ],
        ["a", "b", "c"],
        tokenNow(),
      );
      expect(r.status, r.stderr).to.equal(0);
      const lines = logLines();
      expect(lines.filter((l) => l.startsWith("started")).sort()).to.deep.equal([
        "started vn-a",
        "started vn-b",
        "started vn-c",
      ]);
      // The steps after a start did not wait for it.
      expect(lines.indexOf("do record of c vn-c")).to.be.lessThan(lines.indexOf("started vn-a"));
      // Nothing of the round's own left behind (its outputs go to a temporary directory).
      expect(r.stderr).to.not.match(/started|address in use/);
    });

    it("one that fails is undone alone at the end, with its output, after every segment ran", () => {
      const r = run(
        [
          { actions: plan("a", true), undo: true },
          { actions: plan("b", true), undo: true },
          { actions: plan("c", true), undo: true },
        ],
        ["a", "b", "c"],
        tokenNow(),
      );
      expect(r.status).to.equal(70);
      const out = parseRoundOutput(r.stderr)!;
      expect(out.stoppedAt).to.equal(undefined);
      expect([...out.failed]).to.deep.equal([[2, "start daemon"]]);
      expect(out.stderr.get(2)).to.include("address in use on vn-b");
      const lines = logLines();
      expect(lines.filter((l) => l.startsWith("undo"))).to.deep.equal([
        "undo record of b vn-b",
        "undo start vn-b",
        "undo bridge of b vn-b",
      ]);
      expect(lines).to.include.members(["started vn-a", "started vn-c", "do record of c vn-c"]);
    });

    it("two in one segment take turns: the second waits for the first, whose failure stops the segment", () => {
      const failing: Action = {
        name: "first start",
        run: `sh -c ${quote(["sleep 0.2; echo 'first refused' >&2; exit 3"])}`,
        undo: `echo "undo first $br" >> ${log}`,
        background: true,
      };
      const r = run(
        [
          { actions: plan("a"), undo: true },
          { actions: [failing, slowStart(false)], undo: true },
        ],
        ["a", "b"],
        tokenNow(),
      );
      expect(r.status).to.equal(70);
      const out = parseRoundOutput(r.stderr)!;
      expect(out.stoppedAt).to.equal(2);
      expect([...out.failed]).to.deep.equal([[2, "start daemon"]]);
      expect(out.stderr.get(2)).to.include("first refused");
      expect(logLines()).to.include.members(["started vn-a", "undo first vn-b"]);
      expect(logLines()).to.not.include("started vn-b");
    });

    it("a segment that fails after its start waits for the start before undoing it", () => {
      const boom: Action = { name: "boom", run: "false" };
      const r = run(
        [
          { actions: plan("a"), undo: true },
          { actions: [step("bridge of b"), slowStart(false), boom], undo: true },
          { actions: plan("c"), undo: true },
        ],
        ["a", "b", "c"],
        tokenNow(),
      );
      expect(r.status).to.equal(70);
      expect(parseRoundOutput(r.stderr)!.stoppedAt).to.equal(2);
      const lines = logLines();
      // b's start finished before its undo ran; a's start was waited for; c never ran.
      expect(lines.indexOf("started vn-b")).to.be.greaterThan(-1);
      expect(lines.indexOf("started vn-b")).to.be.lessThan(lines.indexOf("undo start vn-b"));
      expect(lines).to.include("started vn-a");
      expect(lines.some((l) => l.includes("vn-c"))).to.equal(false);
    });
  });

  it("runs nothing when the host's token is not the one the plans were made from", () => {
    host.must(`echo other > ${STATE_DIR}/generation`);
    const r = run([{ actions: [step("a1")], undo: true }], ["a"], "expected");
    expect(r.status).to.equal(75);
    expect(logLines()).to.deep.equal([]);
  });
});
