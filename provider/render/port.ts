// A Port's TAP as `ip -batch` and `bridge -batch` take it, and the lines the boot-time restore runs for it.
import { quote } from "shell-quote";
import { DEFAULT_PORT_VLANS, PortSpec, PortVlans } from "../model/port";
import { portAlias, tapMac } from "../naming";
import { KernelPortVlan } from "../observe/observed";

/** `ip -batch` lines that make the TAP, on its bridge, up, with the network's MTU and virtnet's alias. */
export function renderPortCreate(spec: PortSpec, mtu: number): string[] {
  const tuntap = [`tuntap add dev ${spec.name} mode tap`];
  if (spec.owner !== undefined) tuntap.push(`user ${spec.owner}`);
  if (spec.multiQueue) tuntap.push("multi_queue");
  const lines = [
    tuntap.join(" "),
    `link set dev ${spec.name} address ${tapMac(spec.macAddress)} mtu ${mtu} alias ${portAlias(spec.network)} master ${spec.bridge} up`,
  ];
  if (spec.isolated) lines.push(isolationLine(spec.name, true));
  return lines;
}

export function isolationLine(tap: string, on: boolean): string {
  return `link set dev ${tap} type bridge_slave isolated ${on ? "on" : "off"}`;
}

/** A port's VLANs as the kernel lists them; `vlan` absent: the kernel's default (VLAN 1, untagged). */
export function kernelVlansOf(vlan: PortVlans | undefined): KernelPortVlan[] {
  const v = vlan ?? DEFAULT_PORT_VLANS;
  const out: KernelPortVlan[] = v.tagged.map((id) => ({ id, pvid: false, untagged: false }));
  if (v.untagged !== undefined) out.push({ id: v.untagged, pvid: true, untagged: true });
  return out.sort((a, b) => a.id - b.id);
}

const vlanAdd = (tap: string, v: KernelPortVlan) =>
  [`vlan add dev ${tap} vid ${v.id}`, v.pvid ? "pvid" : "", v.untagged ? "untagged" : ""]
    .filter(Boolean)
    .join(" ");
const vlanDel = (tap: string, v: KernelPortVlan) => `vlan del dev ${tap} vid ${v.id}`;
const same = (a: KernelPortVlan, b: KernelPortVlan) =>
  a.id === b.id && a.pvid === b.pvid && a.untagged === b.untagged;

/**
 * `bridge -batch` lines that take a port from the VLANs it has to the ones it wants, and back. Adds come
 * first, so the port is never without its new PVID; `vlan add` of a VLAN it has sets that VLAN's flags anew.
 */
export function vlanChange(
  tap: string,
  want: KernelPortVlan[],
  have: KernelPortVlan[],
): { run: string[]; undo: string[] } {
  const run: string[] = [];
  const undo: string[] = [];
  for (const w of want) {
    const h = have.find((x) => x.id === w.id);
    if (h && same(h, w)) continue;
    run.push(vlanAdd(tap, w));
    undo.push(h ? vlanAdd(tap, h) : vlanDel(tap, w));
  }
  for (const h of have)
    if (!want.some((w) => w.id === h.id)) {
      run.push(vlanDel(tap, h));
      undo.push(vlanAdd(tap, h));
    }
  return { run, undo: undo.reverse() };
}

/** How VLANs read in messages: "10 untagged (PVID), 20, 30 tagged"; "none". */
export function describeVlans(vlans: KernelPortVlan[]): string {
  if (!vlans.length) return "none";
  return vlans
    .map((v) => `${v.id}${v.pvid ? " pvid" : ""}${v.untagged ? " untagged" : " tagged"}`)
    .join(", ");
}

/**
 * What the boot-time restore runs for the port (naming.portRestorePath), after its network's restore.sh: the
 * TAP, when it is missing, with its VLANs (`filtering`: the network is VLAN-aware).
 */
export function renderPortRestore(spec: PortSpec, mtu: number, filtering: boolean): string {
  const make = `printf '%s\\n' ${quote(renderPortCreate(spec, mtu))} | ip -batch -`;
  const vlans = filtering
    ? vlanChange(spec.name, kernelVlansOf(spec.vlan), kernelVlansOf(undefined)).run
    : [];
  const setVlans = vlans.length ? ` && printf '%s\\n' ${quote(vlans)} | bridge -batch -` : "";
  return [
    `# virtnet: brings Port "${spec.name}" of network "${spec.network}" back as last applied. Generated: virtnet rewrites this file.`,
    `ip link show dev ${quote([spec.name])} >/dev/null 2>&1 || { ${make}${setVlans}; }`,
    "",
  ].join("\n");
}
