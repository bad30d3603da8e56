// A static route as `ip route` takes it, and the line the boot-time restore runs for it.
import { quote } from "shell-quote";
import { RouteSpec } from "../model/staticRoute";
import { ROUTE_PROTO } from "../naming";

/** `ip` arguments for the route (without "ip"), optionally with another gateway and device (an undo). */
export function routeArgs(
  verb: "replace" | "del" | "add",
  spec: RouteSpec,
  gateway = spec.gateway,
  device = spec.device,
): string[] {
  const args = [spec.family === 4 ? "-4" : "-6", "route", verb, spec.destination, "via", gateway];
  if (device) args.push("dev", device);
  args.push("metric", String(spec.metric), "proto", String(ROUTE_PROTO));
  return args;
}

/** The command virtnet runs for the route, as `preview --diff` shows it. */
export function routeCommand(spec: RouteSpec): string {
  return ["ip", ...routeArgs("replace", spec)].join(" ");
}

/** What the boot-time restore runs for the route (naming.routeRestorePath). */
export function renderRouteRestore(spec: RouteSpec): string {
  return quote(["ip", ...routeArgs("replace", spec)]) + "\n";
}
