// Stretched segments' texts (golden): the filter as nft lists it, the VXLAN device's ip lines, an extension's
// restore script, and the MTU dnsmasq tells guests.
import { execFileSync } from "node:child_process";
import { expect } from "chai";
import { buildNetworkSpec } from "../../../provider/model/network";
import { networkPaths, vxlanAlias } from "../../../provider/naming";
import { renderDnsmasqConf } from "../../../provider/render/dnsmasq";
import { renderVxlanCreate } from "../../../provider/render/ip";
import { renderSegmentFilter, segmentFilterOf } from "../../../provider/render/nftables";
import { renderExtensionRestore } from "../../../provider/render/restore";
import { expectGolden } from "../golden";
import { member, range } from "../support/segment";

describe("stretched segments: renderers (golden)", () => {
  it("renders a member's filter: its VNI only from the other members, both families, as nft lists it", () => {
    const text = renderSegmentFilter("lab", 4242, 4789, ["198.51.100.13", "2001:db8::2", "198.51.100.2"])!;
    expectGolden("nftables/segment-filter.nft", text);
    execFileSync("nft", ["-c", "-f", "-"], { input: text });
    expect(renderSegmentFilter("lab", 4242, 4789, [])).to.equal(null);
    expect(segmentFilterOf(text, "lab")).to.equal(text);
    expect(segmentFilterOf(text, "lab2")).to.equal(undefined);
  });

  it("renders the VXLAN device and the extension's restore script", () => {
    const d = { ...member, name: member.vxlan, alias: vxlanAlias("lab") };
    expectGolden("ip/vxlan-create.batch", renderVxlanCreate(d).join("\n") + "\n");
    expectGolden("restore/extension.restore", renderExtensionRestore(member));
  });

  it("tells guests the segment's MTU by DHCP option 26 and in router advertisements", () => {
    const inputs = { ipv4: { cidr: "10.60.0.0/24" }, ipv6: { cidr: "fd00:60::/64" } };
    const conf = (mode: string) =>
      renderDnsmasqConf(
        buildNetworkSpec({ mode, ...inputs }, "lab").spec!,
        networkPaths("lab"),
        [range],
        1450,
      );
    expectGolden("dnsmasq/stretched.conf", conf("nat"));
    expect(conf("nat"))
      .to.include("dhcp-option-force=option:mtu,1450\n")
      .and.include("ra-param=vn-lab,mtu:1450,0\n");
    // Isolated: router lifetime 0 as before, with the MTU.
    expect(conf("isolated")).to.include("ra-param=vn-lab,mtu:1450,60,0\n");
  });
});
