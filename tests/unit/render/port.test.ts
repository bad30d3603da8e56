// A Port's `ip -batch` and `bridge -batch` lines and its restore file (golden), and VLAN changes both ways.
import { expect } from "chai";
import { buildPortSpec, PortInputs } from "../../../provider/model/port";
import {
  kernelVlansOf,
  renderPortCreate,
  renderPortRestore,
  vlanChange,
} from "../../../provider/render/port";
import { expectGolden } from "../golden";

const port = (inputs: PortInputs) =>
  buildPortSpec(
    { macAddress: "52:54:00:aa:00:01", ...inputs },
    "nic0",
    { name: "lab", bridgeName: "vn-lab" },
    "h1",
  ).spec!;

const scenarios: Record<string, PortInputs> = {
  plain: {},
  "access-isolated": { vlan: 10, isolated: true },
  "trunk-owner-multiqueue": {
    name: "vn-vm1-0",
    vlan: { tagged: [20, 10], untagged: 30 },
    owner: "libvirt-qemu",
    multiQueue: true,
  },
};

describe("Port renderer (golden)", () => {
  for (const [name, inputs] of Object.entries(scenarios)) {
    it(`renders ${name}`, () => {
      const spec = port(inputs);
      expectGolden(`port/${name}.batch`, renderPortCreate(spec, 1400).join("\n") + "\n");
      expectGolden(`port/${name}.restore`, renderPortRestore(spec, 1400, true));
    });
  }

  it("gives a port on a plain (not VLAN-aware) network no VLAN lines to restore", () => {
    expect(renderPortRestore(port({}), 1500, false)).to.not.include("bridge -batch");
    expect(renderPortRestore(port({ vlan: 10 }), 1500, true)).to.include("bridge -batch");
  });
});

describe("Port VLAN changes", () => {
  const v = (id: number, pvid = false, untagged = false) => ({ id, pvid, untagged });

  it("reads an access port, a trunk and the kernel's default as bridge vlan lists them", () => {
    expect(kernelVlansOf(undefined)).to.deep.equal([v(1, true, true)]);
    expect(kernelVlansOf({ untagged: 10, tagged: [] })).to.deep.equal([v(10, true, true)]);
    expect(kernelVlansOf({ untagged: 30, tagged: [10, 20] })).to.deep.equal([
      v(10),
      v(20),
      v(30, true, true),
    ]);
  });

  it("adds before it deletes, changes flags in place, and undoes in reverse", () => {
    const c = vlanChange("t", [v(10), v(20, true, true)], [v(1, true, true), v(20)]);
    expect(c.run).to.deep.equal([
      "vlan add dev t vid 10",
      "vlan add dev t vid 20 pvid untagged",
      "vlan del dev t vid 1",
    ]);
    expect(c.undo).to.deep.equal([
      "vlan add dev t vid 1 pvid untagged",
      "vlan add dev t vid 20",
      "vlan del dev t vid 10",
    ]);
    expect(vlanChange("t", [v(1, true, true)], [v(1, true, true)])).to.deep.equal({ run: [], undo: [] });
  });
});
