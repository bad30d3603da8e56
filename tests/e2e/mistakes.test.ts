// The mistakes users make, through the engine path on lab hosts: each ends with a clear error, never a hang.
import { expect } from "chai";
import { DhcpRange, VirtualNetwork } from "../../sdk";
import { DeploymentError } from "../engine/engine";
import { LabHost } from "../lab/lab";
import { labHosts, stackFor } from "./support";

/** The run's error, or a failure of the test when it succeeds or has not ended after `ms`. */
async function failureOf(run: Promise<unknown>, ms = 30_000): Promise<DeploymentError> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${ms / 1000} s: a hang`)), ms);
  });
  try {
    await Promise.race([run, late]);
  } catch (e) {
    if (e instanceof DeploymentError) return e;
    throw e;
  } finally {
    clearTimeout(timer);
  }
  throw new Error("expected the run to fail");
}

describe("mistakes users make, on a lab host through the engine path", function () {
  this.timeout(120_000);
  let h1: LabHost;

  before(async () => {
    [h1] = await labHosts(2);
  });

  it("a range on a network another stack destroyed: the next up ends with an error naming host, network and what is missing", async () => {
    const a = stackFor(h1);
    const b = stackFor(h1);
    const programB = () => {
      const n = VirtualNetwork.get("shared", `${h1.address}:22/od`);
      const r = new DhcpRange("r", { network: n, start: "10.73.0.100", end: "10.73.0.150" });
      return { size: r.size, bridge: n.bridgeName };
    };
    try {
      await a.up(() => {
        new VirtualNetwork("od", { mode: "nat", ipv4: { cidr: "10.73.0.0/24" } });
      });
      await b.up(programB);
      await a.destroy();
      for (const round of ["up", "up after a refresh"]) {
        if (round !== "up") await b.refresh();
        const e = await failureOf(b.up(programB));
        expect(e.message, round).to.include(`host root@${h1.address}:22, network "od": get: no such network`);
      }
    } finally {
      await a.destroy();
      await b.destroy();
    }
  });
});
