// What preview catches through the engine path (the real plugin's check), with no host behind it.
import * as fs from "node:fs";
import { expect } from "chai";
import { DhcpRange, getFdb, getLeases, StaticRoute, VirtualNetwork } from "../../../sdk";
import { DeploymentError, makeProjectDir, TestStack } from "../../engine/engine";

const connection = { host: "192.0.2.1", insecureIgnoreHostKey: true, password: "unused" };

describe("preview: a range or route checked against its new network's declared subnet", function () {
  this.timeout(60_000);
  let dir: string;
  before(() => (dir = makeProjectDir()));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function previewError(program: () => void): Promise<string> {
    const err = await new TestStack({ cwd: dir }).preview(program).then(
      () => undefined,
      (e) => e,
    );
    expect(err, "preview should fail").to.be.instanceOf(DeploymentError);
    return err.message;
  }

  it("a range and a reservation outside the subnet of a network the program creates fail at preview", async () => {
    const message = await previewError(() => {
      const n = new VirtualNetwork("pv", { connection, mode: "nat", ipv4: { cidr: "10.80.0.0/24" } });
      new DhcpRange("r", {
        network: n,
        start: "10.81.0.10",
        end: "10.80.0.20",
        hosts: [{ mac: "52:54:00:00:00:01", ip: "10.82.0.5" }],
      });
    });
    expect(message).to.include("start: 10.81.0.10 is outside the network's subnet 10.80.0.0/24");
    expect(message).to.include("hosts[0].ip: 10.82.0.5 is outside the network's subnet 10.80.0.0/24");
  });

  it("a route whose gateway lies outside its new network's subnet fails at preview", async () => {
    const message = await previewError(() => {
      const n = new VirtualNetwork("pv", { connection, mode: "route", ipv4: { cidr: "10.80.0.0/24" } });
      new StaticRoute("rt", { network: n, destination: "10.90.0.0/24", gateway: "10.85.0.1" });
    });
    expect(message).to.match(/gateway: .*10\.85\.0\.1.*10\.80\.0\.0\/24/);
  });

  it("two networks of one program with overlapping subnets on one host fail at preview, naming both", async () => {
    const message = await previewError(() => {
      new VirtualNetwork("first", { connection, mode: "nat", ipv4: { cidr: "10.80.0.0/16" } });
      new VirtualNetwork("second", { connection, mode: "nat", ipv4: { cidr: "10.80.5.0/24" } });
    });
    expect(message).to.include("VirtualNetwork::second: check failed");
    expect(message).to.include(
      'ipv4.cidr: 10.80.5.0/24 overlaps 10.80.0.0/16 of VirtualNetwork "first", declared in this program for the same host 192.0.2.1:22',
    );
    // The same subnets on two hosts are fine.
    const other = { ...connection, host: "192.0.2.2" };
    await new TestStack({ cwd: dir }).preview(() => {
      new VirtualNetwork("first", { connection, mode: "nat", ipv4: { cidr: "10.80.0.0/16" } });
      new VirtualNetwork("second", { connection: other, mode: "nat", ipv4: { cidr: "10.80.5.0/24" } });
    });
  });

  it("getLeases and getFdb of a network still to be made settle at preview (empty), never hang it", async () => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("preview still running after 15 s: a hang")), 15_000);
    });
    const run = new TestStack({ cwd: dir }).preview(() => {
      const n = new VirtualNetwork("pv", { connection, mode: "nat", ipv4: { cidr: "10.80.0.0/24" } });
      return { leases: getLeases({ network: n }), fdb: getFdb({ network: n }) };
    });
    try {
      const r = await Promise.race([run, late]);
      expect(r.outputs).to.deep.equal({ leases: [], fdb: { entries: [], ports: [] } });
    } finally {
      clearTimeout(timer);
    }
  });
});
