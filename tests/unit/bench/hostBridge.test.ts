// The bench's reading of ping output for the uplink move gap (tests/bench/hostBridge.ts).
import { expect } from "chai";
import { pingGap } from "../../bench/hostBridge";

const reply = (seq: number) => `45 bytes from 198.19.0.11: icmp_seq=${seq} ttl=64 time=0.05 ms`;

describe("bench: the uplink move gap from ping's replies", () => {
  it("is one interval and nothing lost when every reply came", () => {
    expect(pingGap([1, 2, 3, 4].map(reply).join("\n"))).to.deep.equal({ lost: 0, gapMs: 10 });
  });

  it("counts the missing replies and the longest silence between two that came", () => {
    const out = [1, 2, 5, 6, 8].map(reply).join("\n") + "\n--- 198.19.0.11 ping statistics ---";
    expect(pingGap(out)).to.deep.equal({ lost: 3, gapMs: 30 });
  });

  it("refuses output with too few replies to say anything", () => {
    expect(() => pingGap("PING 198.19.0.11 (198.19.0.11) 37(65) bytes of data.")).to.throw(/too few/);
  });
});
