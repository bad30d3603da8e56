// A StaticRoute's operations on a host. Routes share the probe with networks but run alone in their round.
import { Host } from "../host/host";
import { RouteSpec } from "../model/staticRoute";
import { KernelRoute, ObservedNetwork } from "../observe/observed";
import { Plan } from "../plan/plan";
import { restoreGlobalActions } from "../plan/restore";
import { isOurs, planRoute, planRouteDelete, sameKey } from "../plan/route";
import { observe } from "./probe";
import { ApplyOptions, ApplyResult, runChange } from "./round";

/** Adds or changes one static route: only virtnet's own routes are ever replaced. */
export function applyRoute(host: Host, spec: RouteSpec, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const plan = (o: ObservedNetwork): Plan => {
    const p = planRoute(spec, o.route, opts.stack);
    if (!p.errors.length && p.actions.length) p.actions.push(...restoreGlobalActions(o, true));
    return p;
  };
  return runChange(host, {
    name: routeScope(spec.name),
    bridge: "",
    makePlan: plan,
    undo: true,
    failAfter: opts.failAfter,
    gateway: spec.gateway,
    solo: true,
  });
}

export function deleteRoute(host: Host, name: string): Promise<ApplyResult> {
  const plan = (o: ObservedNetwork): Plan =>
    planRouteDelete(
      name,
      o.route,
      o.networks.length > 0 || (o.extensions ?? []).length > 0,
      restoreGlobalActions(o, false),
    );
  return runChange(host, { name: routeScope(name), bridge: "", makePlan: plan, undo: false, solo: true });
}

export interface RouteStatus {
  /** The record of the route on the host, when virtnet knows it. */
  recorded?: RouteSpec;
  /** The kernel's route with the recorded key and virtnet's protocol, when present. */
  kernel?: KernelRoute;
}

export async function readRoute(host: Host, name: string): Promise<RouteStatus> {
  const o = await observe(host, routeScope(name), "");
  const recorded = o.route.records.find((r) => r.name === name);
  const status: RouteStatus = {};
  if (recorded) {
    status.recorded = recorded;
    const k = o.route.kernel.find((r) => sameKey(r, recorded) && isOurs(r));
    if (k) status.kernel = k;
  }
  return status;
}

// Routes share the probe with networks; they are named in errors as "route <name>".
function routeScope(name: string): string {
  return `route ${name}`;
}
