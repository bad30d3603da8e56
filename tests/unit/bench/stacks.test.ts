// The bench's share of the provider's window that is virtnet's own (tests/bench/stacks.ts virtnetBusyMs).
import { expect } from "chai";
import { virtnetBusyMs } from "../../bench/stacks";
import { CallStat } from "../../engine/plugin";
import { TimingSpan } from "../../../provider/timing";

// Calls on this process's performance.now() clock, spans on the epoch: the same instants.
const at = (ms: number) => performance.timeOrigin + ms;
const call = (method: string, start: number, end: number): CallStat => ({
  method,
  start,
  end,
  ms: end - start,
});
const span = (start: number, end: number, s: TimingSpan["span"] = "round"): TimingSpan => ({
  span: s,
  host: "h1",
  start: at(start),
  end: at(end),
});

describe("bench: virtnet's own time in the provider's window", () => {
  const calls = [
    call("check", 0, 5),
    call("create", 100, 300),
    call("create", 110, 600),
    call("diff", 700, 710),
  ];

  it("is the union of the spans, overlaps counted once", () => {
    const ms = virtnetBusyMs(calls, [span(120, 200, "dial"), span(150, 250), span(400, 500)]);
    expect(ms).to.be.closeTo(230, 0.001);
  });

  it("cuts spans to the window of creates, updates and deletes", () => {
    // A dial that began before the first create (a check's) and a read after the last response.
    const ms = virtnetBusyMs(calls, [span(50, 150, "dial"), span(550, 650, "read"), span(650, 700)]);
    expect(ms).to.be.closeTo(50 + 50, 0.001);
  });

  it("has nothing to say without a window, and is 0 with no spans", () => {
    expect(virtnetBusyMs([call("check", 0, 5)], [span(0, 5)])).to.equal(undefined);
    expect(virtnetBusyMs(calls, [])).to.equal(0);
  });
});
