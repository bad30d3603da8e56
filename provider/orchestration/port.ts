// A Port's operations on a host. A Port is probed with its network (bridge, records) and its TAP; Ports of one
// network share a round (each has its own TAP and record).
import { Host } from "../host/host";
import { PortSpec } from "../model/port";
import { ObservedNetwork, ObservedPort } from "../observe/observed";
import { planPort, planPortDelete } from "../plan/port";
import { observe } from "./probe";
import { ApplyOptions, ApplyResult, runChange } from "./round";

/** Makes the TAP match `spec`: creates, repairs or changes it in place. */
export function applyPort(host: Host, spec: PortSpec, opts: ApplyOptions = {}): Promise<ApplyResult> {
  return runChange(host, {
    name: portScope(spec.name),
    bridge: "",
    network: { name: spec.network, bridge: spec.bridge },
    port: { tap: spec.name, owner: spec.owner },
    makePlan: (o) => planPort(spec, o, opts.stack),
    undo: true,
    failAfter: opts.failAfter,
  });
}

/** Removes the TAP (also while a VM holds it: see planPortDelete) and its records. */
export function deletePort(
  host: Host,
  tap: string,
  network: { name: string; bridge: string },
): Promise<ApplyResult> {
  return runChange(host, {
    name: portScope(tap),
    bridge: "",
    network,
    port: { tap },
    makePlan: (o) => planPortDelete(tap, network.name, o),
    undo: false,
  });
}

export interface PortStatus {
  /** The host's record of the Port. */
  recorded?: PortSpec;
  /** The TAP, when the host has an interface by its name. */
  tap?: ObservedPort;
  /** What the next apply would change: empty when the host matches. */
  drift: string[];
  observed: ObservedNetwork;
}

export async function readPort(host: Host, spec: PortSpec): Promise<PortStatus> {
  const o = await observe(host, portScope(spec.name), "", "", {
    network: { name: spec.network, bridge: spec.bridge },
    port: { tap: spec.name, owner: spec.owner },
  });
  const plan = planPort(spec, o); // the stack its record names is no drift
  const status: PortStatus = {
    drift: plan.errors.length ? plan.errors : plan.actions.map((a) => a.name),
    observed: o,
  };
  const recorded = (o.ports ?? []).find((p) => p.name === spec.name);
  if (recorded) status.recorded = recorded;
  if (o.port) status.tap = o.port;
  return status;
}

// Ports share the probe with networks; they are named in errors as "port <tap>".
function portScope(tap: string): string {
  return `port ${tap}`;
}
