// What brings networks and routes back after a reboot: per-network restore scripts, written at every apply
// from the same renderers, one entry point, and a systemd unit that runs it at boot.
import { quote } from "shell-quote";
import {
  extensionBridgeAlias,
  EXTENSIONS_DIR,
  HOST_BRIDGE_RESTORE_FILE,
  HOST_BRIDGES_DIR,
  EXTENSION_RESTORE_SUFFIX,
  INOTIFY_MARKER,
  NETWORK_RECORD_FILE,
  NETWORK_RESTORE_FILE,
  NetworkPaths,
  NETWORKS_RUN_DIR,
  NETWORKS_STATE_DIR,
  PORTS_DIR_NAME,
  RESTORE_ENTRY,
  ROUTES_DIR,
  RUN_DIR,
  SYSCTL,
  sysctlPath,
  vxlanAlias,
} from "../naming";
import { MemberRecord } from "../model/networkExtension";
import { DhcpRangeSpec } from "../model/dhcpRange";
import { modeUsesExistingBridge } from "../model/modes";
import { NetworkSpec, routesTraffic } from "../model/network";
import { needsDnsmasq } from "./dnsmasq";
import { firewalldZoneCommand } from "./firewalld";
import { IpFamily } from "./firewallIntent";
import {
  ipv6OffText,
  renderBridgeCreate,
  renderVlanLinkCreate,
  renderExtensionBridgeCreate,
  renderVxlanCreate,
  segmentTrunkLine,
  VxlanDevice,
} from "./ip";
import {
  bootRestoreLines,
  DOCKER_USER,
  dockerUserAccepts,
  IPT_COMMAND,
  IPT_FAMILIES,
  renderIptablesState,
} from "./iptables";
import { nftReplaceScript, nftSegmentScript, renderNftables, renderSegmentFilter } from "./nftables";

/** How the network's firewall was applied: its backend, and the families with accepts in DOCKER-USER. */
export interface RestoreFirewall {
  backend: "nftables" | "iptables";
  dockerUser: IpFamily[];
}

/** A stretched segment's VXLAN device on one member and the addresses of the other members. */
export interface RestoreSegment {
  device: VxlanDevice;
  peers: string[];
}

/**
 * Brings one network back exactly as last applied; safe to run when parts of it are still there. `segment`:
 * its VXLAN device when the network is stretched to other hosts.
 */
export function renderNetworkRestore(
  spec: NetworkSpec,
  ranges: DhcpRangeSpec[],
  paths: NetworkPaths,
  firewall: RestoreFirewall = { backend: "nftables", dockerUser: [] },
  segment?: RestoreSegment,
): string {
  const header = `# virtnet: brings network "${spec.name}" back as last applied. Generated: virtnet rewrites this file.`;
  // Its run directory, which /run loses at boot (every network has one: without it, refresh after a boot
  // shows drift).
  const runDir = `mkdir -p -m 0755 ${quote([RUN_DIR, NETWORKS_RUN_DIR, paths.runDir])}`;
  // The bridge is the host's (or a HostBridge's, restored before the networks): nothing else to bring back.
  if (modeUsesExistingBridge(spec.mode)) return `${header}\n${runDir}\n`;
  const lines = [
    header,
    `ip link show dev ${quote([spec.bridge.name])} >/dev/null 2>&1 || printf '%s\\n' ${quote(renderBridgeCreate(spec))} | ip -batch -`,
    ...(segment ? segmentRestoreLines(spec.name, segment) : []),
  ];
  if (spec.vlan)
    lines.push(
      `ip link show dev ${quote([spec.vlan.link])} >/dev/null 2>&1 || printf '%s\\n' ${quote(renderVlanLinkCreate(spec.name, spec.bridge.name, spec.vlan))} | ip -batch -`,
    );
  const ruleset = firewall.backend === "nftables" ? renderNftables(spec) : null;
  if (ruleset) lines.push(`printf '%s' ${quote([nftReplaceScript(spec.name, ruleset)])} | nft -f -`);
  if (firewall.backend === "iptables") {
    const state = renderIptablesState(spec);
    for (const family of IPT_FAMILIES) lines.push(...bootRestoreLines(family, state[family]));
  }
  // Docker starts after virtnet at boot: make its DOCKER-USER chain (Docker keeps an existing one) when
  // Docker is installed, so the accepts are in place before Docker's FORWARD DROP.
  for (const family of firewall.dockerUser) {
    const ipt = IPT_COMMAND[family];
    const accepts = bootRestoreLines(family, {
      filter: { chains: {}, foreign: dockerUserAccepts(spec.name, spec.bridge.name) },
      nat: { chains: {}, foreign: [] },
    });
    lines.push(
      `if ${ipt} -w -n -L ${DOCKER_USER} >/dev/null 2>&1 || { command -v dockerd >/dev/null 2>&1 && ${ipt} -w -N ${DOCKER_USER}; }; then`,
      ...accepts.map((l) => `  ${l}`),
      "fi",
    );
  }
  if (spec.bridge.zone)
    lines.push(
      `${quote(firewalldZoneCommand("change", spec.bridge.zone, spec.bridge.name))} >/dev/null 2>&1`,
    );
  if (routesTraffic(spec)) lines.push(`sysctl -qw ${SYSCTL.ipv4Forwarding}=1`);
  if (routesTraffic(spec) && spec.ipv6) lines.push(`sysctl -qw ${SYSCTL.ipv6Forwarding}=1`);
  lines.push(runDir);
  if (needsDnsmasq(spec, ranges)) lines.push(`dnsmasq --conf-file=${quote([paths.dnsmasqConf])}`);
  return lines.join("\n") + "\n";
}

/**
 * A HostBridge at boot: the saved move, made again unless the bridge is there (-force: the uplink may have no
 * address yet); with a DHCP client on the uplink, through the script that carries the client to the bridge; on a
 * VLAN-aware bridge, its trunk's `bridge -batch` after it.
 */
export function renderHostBridgeRestore(
  name: string,
  uplink: string,
  moveBatch: string,
  carry?: string,
  vlansBatch?: string,
): string {
  const move = carry ? `sh ${quote([carry, moveBatch, "-force"])}` : `ip -force -batch ${quote([moveBatch])}`;
  const again = vlansBatch ? `{ ${move}; bridge -force -batch ${quote([vlansBatch])}; }` : move;
  return [
    `# virtnet: brings HostBridge ${name} (uplink ${uplink}) back. Generated: virtnet rewrites this file.`,
    `ip link show dev ${quote([name])} >/dev/null 2>&1 || ${again}`,
    "",
  ].join("\n");
}

/** A segment's VXLAN device, its forwarding database and its filter, on any member. */
function segmentRestoreLines(network: string, s: RestoreSegment): string[] {
  const dev = quote([s.device.name]);
  const filter = renderSegmentFilter(network, s.device.vni, s.device.port, s.peers);
  return [
    `ip link show dev ${dev} >/dev/null 2>&1 || printf '%s\\n' ${quote(renderVxlanCreate(s.device))} | ip -batch -`,
    ...(s.device.trunk ? [`bridge ${segmentTrunkLine(s.device.name)}`] : []),
    ...s.peers.map((p) => `bridge fdb append 00:00:00:00:00:00 dev ${dev} dst ${quote([p])} 2>/dev/null`),
    // At boot the underlay address may come after this script: the device comes up once it is there.
    `ip link set dev ${dev} up 2>/dev/null || { i=0; while [ $i -lt 300 ] && ! ip link set dev ${dev} up; do sleep 1; i=$((i+1)); done; } >/dev/null 2>&1 &`,
    ...(filter ? [`printf '%s' ${quote([nftSegmentScript(network, filter)])} | nft -f -`] : []),
  ];
}

/** The VXLAN device an extension host's record describes. */
export function memberDevice(m: MemberRecord): VxlanDevice {
  return {
    name: m.vxlan,
    vni: m.vni,
    port: m.port,
    local: m.local,
    mtu: m.mtu,
    alias: vxlanAlias(m.network),
    bridge: m.bridge,
    ...(m.vlanFiltering ? { trunk: true } : {}),
  };
}

/** Brings an extension back on its host exactly as last applied: bridge, VXLAN device, FDB and filter. */
export function renderExtensionRestore(m: MemberRecord): string {
  const br = quote([m.bridge]);
  const bridge = {
    name: m.bridge,
    mac: m.bridgeMac,
    mtu: m.mtu,
    alias: extensionBridgeAlias(m.network),
    vlanFiltering: !!m.vlanFiltering,
  };
  return [
    `# virtnet: brings the extension of network "${m.network}" back as last applied. Generated: virtnet rewrites this file.`,
    `ip link show dev ${br} >/dev/null 2>&1 || { printf '%s\\n' ${quote(renderExtensionBridgeCreate(bridge))} | ip -batch - && ${ipv6OffText(m.bridge)} && ip link set dev ${br} up; }`,
    ...segmentRestoreLines(m.network, { device: memberDevice(m), peers: m.peers }),
    "",
  ].join("\n");
}

/**
 * The one entry point: every autostart network, the extensions, then the Ports (on a network's bridge or an
 * extension's), then every route (routes via a bridge need it first).
 */
export function renderRestoreEntry(): string {
  return [
    "#!/bin/sh",
    "# virtnet: brings every HostBridge, every autostart network, its DHCP ranges and Ports, and every static route back as last applied.",
    "# A network without restore.sh is transient (autostart: false): like libvirt, it does not outlive a boot.",
    `for d in ${NETWORKS_STATE_DIR}/*/; do [ -f "$d/${NETWORK_RECORD_FILE}" ] && [ ! -f "$d/${NETWORK_RESTORE_FILE}" ] && rm -rf -- "$d"; done`,
    // Many dnsmasqs need more inotify instances than the kernel's default (plan/hostState.ts, inotifyActions).
    `[ -f ${INOTIFY_MARKER} ] && read -r vn_orig vn_raised < ${INOTIFY_MARKER} && vn_now=$(cat ${sysctlPath(SYSCTL.inotifyInstances)}); [ "\${vn_now:-0}" -lt "\${vn_raised:-0}" ] && sysctl -qw ${SYSCTL.inotifyInstances}="$vn_raised"`,
    // HostBridges first: a network of mode "bridge" and its Ports go on them.
    `for f in ${HOST_BRIDGES_DIR}/*/${HOST_BRIDGE_RESTORE_FILE}; do [ -f "$f" ] && sh "$f"; done`,
    `for f in ${NETWORKS_STATE_DIR}/*/${NETWORK_RESTORE_FILE}; do [ -f "$f" ] && sh "$f"; done`,
    `for f in ${EXTENSIONS_DIR}/*${EXTENSION_RESTORE_SUFFIX}; do [ -f "$f" ] && sh "$f"; done`,
    `for f in ${NETWORKS_STATE_DIR}/*/${PORTS_DIR_NAME}/*.restore; do [ -f "$f" ] && sh "$f"; done`,
    `for f in ${ROUTES_DIR}/*.restore; do [ -f "$f" ] && sh "$f"; done`,
    "exit 0",
    "",
  ].join("\n");
}

export function renderSystemdUnit(): string {
  return [
    "# Installed by virtnet: brings virtnet's networks and routes back at boot.",
    "[Unit]",
    "Description=virtnet: restore virtual networks and routes",
    // After ifupdown (networking.service): a HostBridge moves the uplink it configured.
    "After=network-pre.target networking.service",
    "Before=network.target",
    "Wants=network-pre.target",
    "",
    "[Service]",
    "Type=oneshot",
    "RemainAfterExit=yes",
    `ExecStart=/bin/sh ${RESTORE_ENTRY}`,
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}
