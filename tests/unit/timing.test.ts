// provider/timing.ts: the spans the bench reads, written only when asked for.
import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { epochMs, timed, TIMING_FILE_ENV, TimingSpan } from "../../provider/timing";

describe("timing: virtnet's own spans for the bench", () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "virtnet-timing-test-"));
    file = path.join(dir, "spans.jsonl");
  });
  afterEach(() => {
    delete process.env[TIMING_FILE_ENV];
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const spans = () =>
    fs
      .readFileSync(file, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as TimingSpan);

  it("writes nothing when the bench did not ask", async () => {
    expect(await timed("round", "h1", async () => 7)).to.equal(7);
    expect(fs.existsSync(file)).to.equal(false);
  });

  it("records each span when it ends, around the work, on the Unix epoch", async () => {
    process.env[TIMING_FILE_ENV] = file;
    const wallBefore = Date.now();
    const before = epochMs();
    await timed("dial", "root@h1:22", () => new Promise((r) => setTimeout(r, 20)));
    await timed("round", "root@h1:22", async () => undefined);
    const after = epochMs();
    const wallAfter = Date.now();
    const [dial, round] = spans();
    expect(dial).to.include({ span: "dial", host: "root@h1:22" });
    expect(dial.end - dial.start).to.be.at.least(19);
    expect(dial.start).to.be.at.least(before);
    expect(round.span).to.equal("round");
    expect(round.start).to.be.at.least(dial.end);
    expect(round.end).to.be.at.most(after);
    // On the Unix epoch, as another process's clock is: inside the wall clock's readings around the work (a
    // second each way for the monotonic clock's drift from it since this process started).
    expect(dial.start).to.be.within(wallBefore - 1000, wallAfter + 1000);
    expect(round.end).to.be.within(wallBefore - 1000, wallAfter + 1000);
  });

  it("never fails the work when the file cannot be written", async () => {
    process.env[TIMING_FILE_ENV] = path.join(dir, "no-such-dir", "spans.jsonl");
    expect(await timed("round", "h1", async () => "done")).to.equal("done");
  });

  it("records a span whose work failed, and passes the failure on", async () => {
    process.env[TIMING_FILE_ENV] = file;
    const failing = timed("read", "h1", async () => {
      throw new Error("probe failed");
    });
    await failing.then(
      () => expect.fail("should have failed"),
      (e: Error) => expect(e.message).to.equal("probe failed"),
    );
    expect(spans().map((s) => s.span)).to.deep.equal(["read"]);
  });
});
