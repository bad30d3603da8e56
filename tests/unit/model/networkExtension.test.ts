// NetworkExtension's inputs and names: property-named errors, and the names and VNI it gets on every member.
import { expect } from "chai";
import { buildExtensionSpec } from "../../../provider/model/networkExtension";
import { defaultVni, MAX_VNI, vxlanName } from "../../../provider/naming";

describe("NetworkExtension: inputs and names", () => {
  const network = { id: "198.18.0.11:22/lab", name: "lab", bridge: "vn-lab" };

  it("refuses a bad localAddress and a VNI out of range, naming the property", () => {
    const errors = buildExtensionSpec({ network, localAddress: "198.19.0.256", vni: 0 }, "x").errors;
    expect(errors.map((e) => e.property)).to.deep.equal(["localAddress", "vni"]);
    expect(buildExtensionSpec({ network, vni: MAX_VNI + 1 }, "x").errors[0].reason).to.match(/1 to 16777215/);
    expect(buildExtensionSpec({ network, localAddress: "2001:DB8::1" }, "x").spec!.localAddress).to.equal(
      "2001:db8::1",
    );
  });

  it("builds nothing and reports nothing while the network is a preview unknown", () => {
    const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
    expect(buildExtensionSpec({ network: { ...network, id: unknown } }, "x")).to.deep.equal({ errors: [] });
  });

  it("derives a stable VNI from the network's id, within 1..2^24-1", () => {
    for (const id of ["198.18.0.11:22/lab", "h:22/x", "[2001:db8::1]:2222/n"]) {
      const v = defaultVni(id);
      expect(v).to.be.within(1, MAX_VNI);
      expect(defaultVni(id)).to.equal(v);
    }
    expect(defaultVni("198.18.0.11:22/lab")).to.not.equal(defaultVni("198.18.0.12:22/lab"));
  });

  it("keeps VXLAN device names within 15 characters and apart", () => {
    expect(vxlanName("lab")).to.equal("vx-lab");
    const long = vxlanName("a-very-long-network-name");
    expect(long.length).to.be.at.most(15);
    expect(long).to.not.equal(vxlanName("a-very-long-network-nam3"));
  });
});
