// Several plans in one apply script (a round): each segment with its own variables and undo, a failure that
// stops the round, jobs that overlap with later segments, and the generation token. Run for real with sh in a
// private network and mount namespace (privateHost.ts).
import { expect } from "chai";
import { networkPaths, STATE_DIR } from "../../../provider/naming";
import { probeArgs } from "../../../provider/network/observe";
import { Action } from "../../../provider/network/plan";
import { parseRoundOutput, renderRoundScript, Segment } from "../../../provider/network/script";
import { PrivateHost } from "./privateHost";

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
  // mktemp's directory is a private one, to see that the script removes what it made there.
  const tmp = "/var/lib/tmp";
  const run = (segments: Segment[], names: string[], expected = "", next = "") =>
    host.sh(`mkdir -p ${tmp}; export TMPDIR=${tmp}\n${renderRoundScript(segments)}`, [
      expected,
      next,
      ...names.flatMap((n) => segArgs(n)),
    ]);
  const logLines = () => host.must(`cat ${log} 2>/dev/null || true`).split("\n").filter(Boolean);

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

  it("a job started in the background overlaps with the later segments; its failure is its segment's alone", () => {
    const job: Action = {
      name: "start job",
      run: `bg_start sh -c 'sleep 0.3; echo "job of $0 done" >> ${log}; echo "device busy" >&2; exit 3' "$br"`,
    };
    const waited: Action = { name: "job done", run: "bg_wait", atRoundEnd: true };
    const r = run(
      [
        { actions: [job, step("a2"), waited], undo: false },
        { actions: [step("b1")], undo: false },
      ],
      ["a", "b"],
    );
    expect(r.status).to.equal(70);
    // b1 ran while a's job was still running.
    expect(logLines()).to.deep.equal(["do a2 vn-a", "do b1 vn-b", "job of vn-a done"]);
    const out = parseRoundOutput(r.stderr)!;
    expect(out.stoppedAt).to.equal(undefined);
    expect([...out.failed]).to.deep.equal([[1, "job done"]]);
    expect(out.stderr.get(1)).to.include("device busy");
    expect(host.must(`ls -A ${tmp}`)).to.equal(""); // the job's stderr file is gone
  });

  it("runs nothing when the host's token is not the one the plans were made from", () => {
    host.must(`echo other > ${STATE_DIR}/generation`);
    const r = run([{ actions: [step("a1")], undo: true }], ["a"], "expected");
    expect(r.status).to.equal(75);
    expect(logLines()).to.deep.equal([]);
  });
});
