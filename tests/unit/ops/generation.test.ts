// The generation token: how an apply script knows that no other apply came in between its plan's probe and
// the host lock. Real probes and apply scripts, in a private network and mount namespace (PrivateHost).
import { expect } from "chai";
import { GENERATION_FILE, STATE_DIR } from "../../../provider/naming";
import * as ops from "../../../provider/ops/ops";
import { buildNetworkSpec, NetworkSpec } from "../../../provider/model/network";
import { PrivateHost } from "../support/privateHost";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe("generation token", function () {
  this.timeout(30_000);
  let host: PrivateHost;
  let spec: NetworkSpec;
  const touch = (name: string) => ({
    name: `touch ${name}`,
    run: `: > ${STATE_DIR}/${name}`,
    undo: `rm -f ${STATE_DIR}/${name}`,
  });
  const exists = (name: string) => host.sh(`[ -e ${STATE_DIR}/${name} ]`).status === 0;

  beforeEach(async () => {
    host = await PrivateHost.start();
    spec = buildNetworkSpec({ mode: "nat", ipv4: { cidr: "10.77.0.0/24" } }, "gen").spec!;
  });
  afterEach(() => host.close());

  it("is empty on a host without one, and a successful apply writes a new random one", () => {
    expect(host.observe(spec).generation).to.equal("");
    expect(host.apply(spec, [touch("a")]).status).to.equal(0);
    const first = host.observe(spec).generation;
    expect(first).to.match(UUID);
    expect(host.apply(spec, [touch("b")]).status).to.equal(0);
    const second = host.observe(spec).generation;
    expect(second).to.match(UUID).and.not.equal(first);
  });

  it("a plan made before another apply is refused (exit 75) and changes nothing", () => {
    const stale = host.observe(spec);
    expect(host.apply(spec, [touch("a")]).status).to.equal(0);
    const r = host.applyWith(spec, [touch("late")], stale.generation);
    expect(r.status).to.equal(75);
    expect(exists("late")).to.equal(false);
  });

  it("a failed apply is undone and keeps the token, so plans made before it still hold", () => {
    expect(host.apply(spec, [touch("a")]).status).to.equal(0);
    const before = host.observe(spec).generation;
    const r = host.apply(spec, [touch("b"), { name: "boom", run: "false" }]);
    expect(r.status).to.equal(70);
    expect(exists("b")).to.equal(false);
    expect(host.observe(spec).generation).to.equal(before);
    expect(host.applyWith(spec, [touch("c")], before).status).to.equal(0);
  });

  it("goes with virtnet's state directory in the last teardown, leaving nothing", () => {
    expect(host.apply(spec, [touch("a")]).status).to.equal(0);
    expect(host.must(`cat ${GENERATION_FILE}`)).to.match(/^[0-9a-f-]{36}\n$/);
    const r = host.apply(spec, [{ name: "rm a", run: `rm -f ${STATE_DIR}/a` }, ops.removeStateDir()]);
    expect(r.status, r.stderr).to.equal(0);
    expect(host.sh(`[ -e ${STATE_DIR} ]`).status, "state directory gone").to.equal(1);
    expect(host.observe(spec).generation).to.equal("");
  });

  it("is never read or written through a symlink planted in its place", () => {
    host.must(`echo planted > /var/lib/victim; ln -s /var/lib/victim ${GENERATION_FILE}`);
    expect(host.observe(spec).generation, "not read through the link").to.equal("");
    expect(host.apply(spec, [touch("a")]).status).to.equal(0);
    expect(host.must("cat /var/lib/victim")).to.equal("planted\n");
    expect(host.must(`[ ! -L ${GENERATION_FILE} ] && cat ${GENERATION_FILE}`).trim()).to.match(UUID);
  });
});
