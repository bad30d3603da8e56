// A stretched segment's member for the tests of several layers: its record, and the host before and after.
import { MemberRecord } from "../../../provider/model/networkExtension";
import {
  EXTENSIONS_DIR,
  extensionBridgeAlias,
  nftSegmentChain,
  STATE_DIR,
  vxlanAlias,
} from "../../../provider/naming";
import { firewallOf, ObservedNetwork } from "../../../provider/observe/observed";
import { renderSegmentFilter } from "../../../provider/render/nftables";
import { renderExtensionRestore, renderRestoreEntry } from "../../../provider/render/restore";
import { emptyObserved } from "./observed";

/** A DHCP range of the network, for the MTU dnsmasq tells. */
export const range = {
  name: "pool",
  start: "10.60.0.100",
  end: "10.60.0.199",
  leaseTime: "1h",
  hosts: [],
  size: 100,
};

export const member: MemberRecord = {
  network: "lab",
  extension: "lab-h2",
  home: "root@198.18.0.11:22",
  bridge: "vn-lab",
  bridgeMac: "52:54:00:bd:01:40",
  vxlan: "vx-lab",
  vni: 4242,
  port: 4789,
  mtu: 1450,
  local: "198.51.100.12",
  peers: ["198.51.100.11", "198.51.100.13"],
};

/** A host with an underlay interface (eth0, MTU 1500) holding the member's address, a route to the peers and
 * (no firewall section: firewallOf's default) nft. */
export function underlayHost(over: Partial<ObservedNetwork> = {}): ObservedNetwork {
  return emptyObserved({
    links: [{ name: "eth0", mtu: 1500, up: true, addresses: [member.local] }],
    route: { kernel: [], records: [], dirs: [], gatewayLookup: { dev: "eth0" } },
    ...over,
  });
}

/** The host once the member `m` was applied on it. */
export function joinedHost(m = member): ObservedNetwork {
  const o = underlayHost();
  return {
    ...o,
    bridge: {
      kind: "bridge",
      alias: extensionBridgeAlias(m.network),
      mac: m.bridgeMac,
      mtu: m.mtu,
      up: true,
      stp: false,
      forwardDelay: 0,
      ports: [m.vxlan],
    },
    links: [
      ...o.links!,
      {
        name: m.bridge,
        kind: "bridge",
        alias: extensionBridgeAlias(m.network),
        mtu: m.mtu,
        up: true,
        addresses: [],
      },
      {
        name: m.vxlan,
        kind: "vxlan",
        alias: vxlanAlias(m.network),
        mtu: m.mtu,
        up: true,
        master: m.bridge,
        addresses: [],
        vxlan: { vni: m.vni, port: m.port, local: m.local, learning: true },
      },
    ],
    fdb: { [m.vxlan]: m.peers.map((dst) => ({ mac: "00:00:00:00:00:00", dst, permanent: true })) },
    firewall: {
      ...firewallOf(o),
      virtnetTable: true,
      nftChains: [`inet virtnet ${nftSegmentChain(m.network)}`],
    },
    nftTableListing: renderSegmentFilter(m.network, m.vni, m.port, m.peers)!,
    extensions: [m],
    extensionRestores: { [m.network]: renderExtensionRestore(m) },
    restore: { ...o.restore, entry: renderRestoreEntry() },
    dirs: [STATE_DIR, EXTENSIONS_DIR],
  };
}
