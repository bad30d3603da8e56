// What still depends on a network on its host, and which stack declared each: a network's delete refuses while
// another stack's dependants are there, since it would take their files and traffic with it.
import { ObservedNetwork } from "../observe/observed";

export interface Dependant {
  kind: "DhcpRange" | "StaticRoute" | "Port" | "NetworkExtension";
  name: string;
  /** The stack its host record names; absent in records written before virtnet recorded it. */
  stack?: string;
}

/** Every dependant the host records for the network: its ranges, Ports and extensions, and routes via its bridge. */
export function dependantsOf(bridge: string, o: ObservedNetwork): Dependant[] {
  const of = (kind: Dependant["kind"], name: string, stack: string | undefined): Dependant =>
    stack === undefined ? { kind, name } : { kind, name, stack };
  return [
    ...o.ranges.map((r) => of("DhcpRange", r.name, r.stack)),
    ...o.route.records.filter((r) => r.device === bridge).map((r) => of("StaticRoute", r.name, r.stack)),
    ...(o.ports ?? []).map((p) => of("Port", p.name, p.stack)),
    ...(o.segment?.members ?? []).map((m) => of("NetworkExtension", m.extension, m.stack)),
  ];
}

/**
 * The dependants another stack than `stack` declared. A record without a stack (written before virtnet recorded
 * it), or a network whose own stack is unknown, counts as the same stack: no refusal comes from an upgrade.
 */
export function otherStacksDependants(
  bridge: string,
  o: ObservedNetwork,
  stack: string | undefined,
): Dependant[] {
  if (stack === undefined) return [];
  return dependantsOf(bridge, o).filter((d) => d.stack !== undefined && !sameStack(d.stack, stack));
}

/**
 * Two recorded stacks are one when their project and stack agree, and their organizations too when both name
 * one (a runtime without an organization records "<project>/<stack>").
 */
export function sameStack(a: string, b: string): boolean {
  const pa = a.split("/");
  const pb = b.split("/");
  const n = Math.min(pa.length, pb.length, 3);
  return pa.slice(-n).join("/") === pb.slice(-n).join("/");
}

/** Why the network cannot go now, naming each dependant and its stack, and what to do; undefined when it can. */
export function dependantsRefusal(
  network: string,
  bridge: string,
  o: ObservedNetwork,
  stack: string | undefined,
): string | undefined {
  const others = otherStacksDependants(bridge, o, stack);
  if (!others.length) return undefined;
  const list = others.map((d) => `${d.kind} "${d.name}" of stack "${d.stack}"`).join(", ");
  return (
    `network "${network}" is still used by another stack: ${list}. Deleting it would take them with it: ` +
    `destroy them in their stack (or move them to another network) first, then delete the network again`
  );
}
