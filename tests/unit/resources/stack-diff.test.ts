import { expect } from "chai";
import * as network from "../../../provider/resources/network";
import * as dhcpRange from "../../../provider/resources/dhcpRange";
import * as staticRoute from "../../../provider/resources/staticRoute";
import * as port from "../../../provider/resources/port";
import * as networkExtension from "../../../provider/resources/networkExtension";

const connection = { host: "198.18.0.11", hostKey: "SHA256:abc" };
const net = { name: "lab", bridgeName: "vn-lab", cidr: "10.50.1.0/24", gatewayIp: "10.50.1.1", mode: "nat" };

// Each resource's inputs, as its SDK class passes them: the stack that declares it is the hidden `__stack`.
const cases: [string, { diff: (id: string, olds: any, news: any) => any }, Record<string, unknown>][] = [
  [
    "VirtualNetwork",
    network,
    { connection, name: "lab", mode: "nat", ipv4: { cidr: "10.50.1.0/24" }, bridgeName: "vn-lab" },
  ],
  [
    "DhcpRange",
    dhcpRange,
    { connection, name: "pool", network: net, start: "10.50.1.100", end: "10.50.1.199" },
  ],
  [
    "StaticRoute",
    staticRoute,
    { connection, name: "r", network: net, destination: "10.60.0.0/16", gateway: "10.50.1.254" },
  ],
  ["Port", port, { connection, name: "tap0", network: net }],
  [
    "NetworkExtension",
    networkExtension,
    {
      connection: { ...connection, host: "198.18.0.12" },
      name: "far",
      network: { ...net, id: "198.18.0.11:22/lab" },
    },
  ],
];

describe("the declaring stack (__stack) is no input a user sees", () => {
  for (const [kind, resource, inputs] of cases)
    it(`${kind}: a changed, added or dropped stack gives no change and no replacement`, () => {
      for (const [before, after] of [
        ["proj/a", "proj/renamed"],
        [undefined, "org/proj/a"],
        ["proj/a", undefined],
      ]) {
        const d = resource.diff("id", { ...inputs, __stack: before }, { ...inputs, __stack: after });
        expect(d, `${before} -> ${after}`).to.deep.include({ changes: false, replaces: [] });
      }
    });
});
