// What a HostBridge needs from the host, decided from the probe alone: why it cannot be made, whether it is
// there, what drifted, the in-place tuning (stp, forward delay, MTU) that needs no move, and the in-place change
// of vlanFiltering (run under the move's guard: it changes how the host's own frames cross the bridge).
import { HostBridgeSpec } from "../model/hostBridge";
import { HostBridgePaths, hostBridgeAlias } from "../naming";
import { DhcpClient, dhcpClient, ObservedHostBridge } from "../observe/hostBridge";
import { bridgeTuning, TRUNK_VLANS } from "../render/ip";
import {
  movedAddresses,
  movedRoutes,
  renderMove,
  renderMoveVlans,
  renderRollback,
  renderVlanFilteringChange,
  UplinkState,
} from "../render/hostBridge";
import { renderClientCarry } from "../render/hostBridgeClient";
import { renderHostBridgeRestore, renderRestoreEntry, renderSystemdUnit } from "../render/restore";

const FOREVER = 4294967295;

/** The bridge is virtnet's HostBridge of this uplink. */
export function isOurs(spec: HostBridgeSpec, o: ObservedHostBridge): boolean {
  return o.bridge?.kind === "bridge" && o.bridge.alias === hostBridgeAlias(spec.uplink);
}

/** Why the uplink cannot be moved into the bridge; found before anything changes. */
export function hostBridgeErrors(spec: HostBridgeSpec, o: ObservedHostBridge): string[] {
  const u = o.uplink;
  const name = spec.uplink;
  if (!u) return [`uplink ${name} does not exist on this host`];
  const errors: string[] = [];
  if (o.wireless) errors.push(`uplink ${name} is a wireless interface: the kernel cannot put it in a bridge`);
  if (u.kind === "bridge")
    errors.push(`uplink ${name} is itself a bridge: give the interface it should carry`);
  if (u.alias?.startsWith("virtnet:"))
    errors.push(`uplink ${name} is the bridge of virtnet network "${u.alias.slice("virtnet:".length)}"`);
  if (u.master && u.master !== spec.name) errors.push(`uplink ${name} is already a port of ${u.master}`);
  if (o.bridge && !isOurs(spec, o))
    errors.push(
      `interface ${spec.name} already exists and is not virtnet's HostBridge of ${name}; choose another name`,
    );
  for (const m of o.managers)
    errors.push(
      `uplink ${name} is managed by ${m}: virtnet does not move it behind ${m}'s back (after a reboot ${m} ` +
        `would configure it again); make the bridge in ${m}'s own configuration and use a VirtualNetwork of ` +
        `mode "bridge" over it, or release ${name} from ${m} first`,
    );
  errors.push(...dhcpErrors(spec, o));
  return errors;
}

/** The DHCP clients that serve interface `name` (one that names no interface serves them all). */
function clientsOn(name: string, o: ObservedHostBridge): DhcpClient[] {
  return o.dhcpClients.filter((c) => c.interfaces.includes(name) || c.interfaces.length === 0);
}

/** An ISC dhclient for IPv4 on the uplink alone: the one client virtnet carries to the bridge. */
function carried(c: DhcpClient, uplink: string): boolean {
  return (
    c.program === "dhclient" &&
    c.interfaces.length === 1 &&
    c.interfaces[0] === uplink &&
    !c.argv.includes("-6")
  );
}

/** Why the uplink's DHCP client cannot follow its address to the bridge. */
function dhcpErrors(spec: HostBridgeSpec, o: ObservedHostBridge): string[] {
  const name = spec.uplink;
  const errors: string[] = [];
  const clients = clientsOn(name, o);
  const say = (c: DhcpClient, why: string) =>
    `uplink ${name} has its address from ${c.program} (${c.argv.join(" ")}): ${why}; run the DHCP client ` +
    `on ${spec.name} yourself after the move, or give ${name} a static address`;
  for (const c of clients) {
    if (carried(c, name)) continue;
    if (c.program === "udhcpc")
      errors.push(
        say(
          c,
          "virtnet carries ISC dhclient only (udhcpc deconfigures the interface it starts on, which would drop the moved addressing)",
        ),
      );
    else if (c.program !== "dhclient") errors.push(say(c, "virtnet carries ISC dhclient only"));
    else if (c.argv.includes("-6"))
      errors.push(say(c, "virtnet carries ISC dhclient for IPv4 only, not its DHCPv6 client"));
    else
      errors.push(
        say(
          c,
          `it serves ${c.interfaces.length ? c.interfaces.join(", ") : "every interface"}, and virtnet carries a dhclient that serves ${name} alone`,
        ),
      );
  }
  const dynamic = (o.uplinkState?.addresses ?? []).some(
    (a) => a.dynamic && a.valid_life_time !== undefined && a.valid_life_time !== FOREVER,
  );
  if (dynamic && !clients.length)
    errors.push(
      `uplink ${name} has addresses with a finite lifetime but no DHCP client virtnet knows (dhclient, udhcpc, ` +
        `dhcpcd) runs on it: virtnet cannot tell who renews them; give ${name} a static address`,
    );
  return errors;
}

/** The uplink's state to save before the move: with the command lines of the DHCP clients that follow it. */
export function uplinkToSave(spec: HostBridgeSpec, o: ObservedHostBridge): UplinkState {
  const clients = clientsOn(spec.uplink, o).filter((c) => carried(c, spec.uplink));
  return clients.length ? { ...o.uplinkState!, clients: clients.map((c) => c.argv) } : o.uplinkState!;
}

/** A dhclient command line started on the bridge: the same, with the bridge for the uplink. */
function onBridge(spec: HostBridgeSpec, argv: string[]): string[] {
  const c = dhcpClient(0, "dhclient", argv);
  return argv.map((a, i) => (c.interfaceAt.includes(i) && a === spec.uplink ? spec.name : a));
}

/** Where the host differs from a HostBridge that exists: what a refresh reports. */
export function hostBridgeDrift(spec: HostBridgeSpec, o: ObservedHostBridge): string[] {
  if (!o.bridge) return [`bridge ${spec.name} is missing`];
  const drift: string[] = [];
  if (o.uplink?.master !== spec.name) drift.push(`uplink ${spec.uplink} is not in bridge ${spec.name}`);
  const moved = o.saved ? movedAddresses(o.saved).map((a) => a.local) : [];
  const back = (o.uplinkState?.addresses ?? []).filter((a) => moved.includes(a.local));
  if (back.length) drift.push(`addresses back on ${spec.uplink}: ${back.map((a) => a.local).join(", ")}`);
  const onBridge = o.bridgeAddresses.map((a) => a.local);
  const missing = moved.filter((a) => !onBridge.includes(a));
  if (missing.length) drift.push(`addresses missing from ${spec.name}: ${missing.join(", ")}`);
  if (o.saved?.clients?.length && !clientRunsOn(spec.name, o))
    drift.push(`no DHCP client (dhclient) runs on ${spec.name}`);
  drift.push(...tuningCommands(spec, o).map((c) => c.what));
  const vlans = vlanFilteringChange(spec, o);
  if (vlans) drift.push(vlans.what);
  return drift;
}

const trunkText = `a trunk of VLANs ${TRUNK_VLANS.first}-${TRUNK_VLANS.last}`;

/** The in-place change that brings vlan_filtering and the uplink's trunk to the spec, or undefined. */
export function vlanFilteringChange(
  spec: HostBridgeSpec,
  o: ObservedHostBridge,
): ({ what: string } & ReturnType<typeof renderVlanFilteringChange>) | undefined {
  const b = o.bridge;
  if (!b) return undefined;
  const on = !!spec.vlanFiltering;
  const filtering = !!b.vlanFiltering;
  const trunk = !!o.uplinkTrunk && o.uplink?.master === spec.name;
  let what: string | undefined;
  if (filtering !== on)
    what = on
      ? `turn VLAN filtering on for ${spec.name} (it is off), uplink ${spec.uplink} ${trunkText}`
      : `turn VLAN filtering off for ${spec.name} (it is on)`;
  else if (on && !trunk) what = `make uplink ${spec.uplink} ${trunkText} again`;
  if (!what) return undefined;
  return { what, ...renderVlanFilteringChange(spec, on, { filtering, trunk }) };
}

/** `ip` arguments that bring stp, forward delay and MTU to the spec in place, each with what it changes. */
export function tuningCommands(
  spec: HostBridgeSpec,
  o: ObservedHostBridge,
): { what: string; args: string[] }[] {
  const b = o.bridge;
  if (!b) return [];
  const out: { what: string; args: string[] }[] = [];
  if (b.stp !== spec.stp || b.forwardDelay !== spec.forwardDelay * 100)
    out.push({
      what: `tune bridge ${spec.name} (stp ${spec.stp ? "on" : "off"}, forward delay ${spec.forwardDelay} s)`,
      args: [
        "link",
        "set",
        "dev",
        spec.name,
        "type",
        "bridge",
        ...bridgeTuning(spec.stp, spec.forwardDelay * 100),
      ],
    });
  if (spec.mtu !== undefined && (b.mtu !== spec.mtu || o.uplink?.mtu !== spec.mtu)) {
    // The uplink first when growing (a bridge's MTU cannot pass its ports'), the bridge first when shrinking.
    const order = spec.mtu > b.mtu ? [spec.uplink, spec.name] : [spec.name, spec.uplink];
    for (const dev of order)
      out.push({
        what: `set ${dev} MTU ${spec.mtu}`,
        args: ["link", "set", "dev", dev, "mtu", String(spec.mtu)],
      });
  }
  return out;
}

/**
 * The files of a HostBridge on its host: the move and the rollback (`ip -batch`), with a DHCP client the scripts
 * that carry it along with each, and its boot restore.
 */
export function hostBridgeFiles(
  spec: HostBridgeSpec,
  saved: UplinkState,
  p: Pick<HostBridgePaths, "move" | "moveCarry" | "moveVlans">,
): {
  move: string;
  moveVlans: string;
  rollback: string;
  moveCarry?: string;
  rollbackCarry?: string;
  restore: string;
} {
  const vlans = renderMoveVlans(spec);
  const vlansPath = vlans.length ? p.moveVlans : undefined;
  const files = {
    move: renderMove(spec, saved).join("\n") + "\n",
    moveVlans: vlans.map((l) => l + "\n").join(""),
    rollback: renderRollback(spec, saved).join("\n") + "\n",
  };
  const clients = saved.clients ?? [];
  if (!clients.length)
    return {
      ...files,
      restore: renderHostBridgeRestore(spec.name, spec.uplink, p.move, undefined, vlansPath),
    };
  const addresses = movedAddresses(saved);
  return {
    ...files,
    moveCarry: renderClientCarry({
      from: spec.uplink,
      to: spec.name,
      addresses,
      start: clients.map((argv) => onBridge(spec, argv)),
    }),
    rollbackCarry: renderClientCarry({ from: spec.name, to: spec.uplink, addresses, start: clients }),
    restore: renderHostBridgeRestore(spec.name, spec.uplink, p.move, p.moveCarry, vlansPath),
  };
}

/** A carried DHCP client runs on `name` (checked before a change is confirmed, and by refresh). */
export function clientRunsOn(name: string, o: ObservedHostBridge): boolean {
  return o.dhcpClients.some((c) => c.program === "dhclient" && c.interfaces.includes(name));
}

/** virtnet's boot-time entry and systemd unit, which a HostBridge needs as networks do. */
export function bootTexts(): { entry: string; unit: string } {
  return { entry: renderRestoreEntry(), unit: renderSystemdUnit() };
}

/** What moved from the uplink to the bridge, for the resource's outputs. */
export function movedOf(saved: UplinkState): { addresses: string[]; routes: string[] } {
  return {
    addresses: movedAddresses(saved).map((a) => `${a.local}/${a.prefixlen}`),
    routes: movedRoutes(saved).map((r) =>
      [r.dst, ...(r.gateway ? ["via", r.gateway] : []), ...(r.table ? ["table", r.table] : [])].join(" "),
    ),
  };
}

/** The addresses a move takes to the bridge. */
export function movedAddressList(saved: UplinkState): string[] {
  return movedAddresses(saved).map((a) => a.local);
}
