// The pure planner for one static route. virtnet marks its kernel routes with its own route protocol number,
// so the kernel itself tells which routes are virtnet's.
import { RouteSpec } from "../model/staticRoute";
import { ROUTE_PROTO, routeRecordPath, routeRestorePath, ROUTES_DIR, STATE_DIR } from "../naming";
import { KernelRoute, RouteObservation } from "../observe/observed";
import { Action } from "../ops/action";
import * as ops from "../ops/ops";
import { renderRouteRestore, routeArgs } from "../render/route";
import { Plan, refused } from "./plan";

/** The kernel's name for a destination: "default" and bare host addresses are listed differently. */
function kernelDst(r: KernelRoute, family: 4 | 6): string {
  if (r.dst === "default") return family === 4 ? "0.0.0.0/0" : "::/0";
  return r.dst.includes("/") ? r.dst : `${r.dst}/${family === 4 ? 32 : 128}`;
}

export function sameKey(
  r: KernelRoute,
  spec: { destination: string; metric: number; family: 4 | 6 },
): boolean {
  return kernelDst(r, spec.family) === spec.destination && (r.metric ?? 0) === spec.metric;
}

export function isOurs(r: KernelRoute): boolean {
  return String(r.protocol) === String(ROUTE_PROTO);
}

/**
 * Actions that make one route true; errors when the host forbids it. Its record names `stack`, the stack that
 * declares it (kept from the record when not given).
 */
export function planRoute(spec: RouteSpec, o: RouteObservation, stack?: string): Plan {
  const errors: string[] = [];
  const record = o.records.find((r) => r.name === spec.name);
  const conflict = o.kernel.find((r) => sameKey(r, spec));
  if (conflict && !isOurs(conflict))
    errors.push(
      `a route to ${spec.destination} (metric ${spec.metric}) already exists and is not virtnet's: ${describe(conflict)}`,
    );
  const owner = o.records.find(
    (r) => r.name !== spec.name && r.destination === spec.destination && r.metric === spec.metric,
  );
  if (owner)
    errors.push(
      `a route to ${spec.destination} (metric ${spec.metric}) belongs to virtnet route "${owner.name}"`,
    );
  if (o.gatewayLookup?.gateway)
    errors.push(
      `gateway ${spec.gateway} is not on a directly connected network of the host (it is reached via ${o.gatewayLookup.gateway})`,
    );
  else if (spec.device && o.gatewayLookup && o.gatewayLookup.dev !== spec.device)
    errors.push(
      `gateway ${spec.gateway} is reached via ${o.gatewayLookup.dev}, not via the network's bridge ${spec.device}`,
    );
  if (errors.length) return refused(errors);

  const actions: Action[] = [];
  for (const d of [STATE_DIR, ROUTES_DIR]) if (!o.dirs.includes(d)) actions.push(ops.makeDir(d));
  // The old kernel route goes when the key (destination, metric) changed.
  if (
    record &&
    (record.destination !== spec.destination ||
      record.metric !== spec.metric ||
      record.family !== spec.family)
  ) {
    const old = o.kernel.find((r) => sameKey(r, record) && isOurs(r));
    if (old)
      actions.push(
        ops.ip(`remove route ${record.destination}`, routeArgs("del", record), routeArgs("replace", record)),
      );
  }
  const current = conflict && isOurs(conflict) ? conflict : undefined;
  const matches =
    current && current.gateway === spec.gateway && (!spec.device || current.dev === spec.device);
  if (!matches) {
    actions.push(
      ops.ip(
        current ? `change route ${spec.destination}` : `add route ${spec.destination}`,
        routeArgs("replace", spec),
        current ? routeArgs("replace", spec, current.gateway!, current.dev) : routeArgs("del", spec),
      ),
    );
  }
  const declaredBy = stack ?? record?.stack;
  const text = JSON.stringify(declaredBy === undefined ? spec : { ...spec, stack: declaredBy }) + "\n";
  const prev = record ? JSON.stringify(record) + "\n" : undefined;
  if (text !== prev) {
    actions.push(ops.writeFile(routeRecordPath(spec.name), text, prev));
    // What the boot-time restore runs for this route.
    const restore = record ? renderRouteRestore(record) : undefined;
    actions.push(ops.writeFile(routeRestorePath(spec.name), renderRouteRestore(spec), restore));
  }
  return { errors: [], warnings: [], actions };
}

/** `lastTeardown`: actions to run before virtnet's state directory goes, when nothing else is left. */
export function planRouteDelete(
  name: string,
  o: RouteObservation,
  otherStateLeft: boolean,
  lastTeardown: Action[] = [],
): Plan {
  const record = o.records.find((r) => r.name === name);
  const actions: Action[] = [];
  if (record) {
    if (o.kernel.some((r) => sameKey(r, record) && isOurs(r)))
      actions.push(ops.ip(`remove route ${record.destination}`, routeArgs("del", record)));
    actions.push(
      ops.discardFiles(`remove ${routeRecordPath(name)}`, routeRecordPath(name), routeRestorePath(name)),
    );
    if (o.records.length === 1) {
      actions.push(ops.removeEmptyDirs(`remove directory ${ROUTES_DIR}`, [ROUTES_DIR]));
      if (!otherStateLeft) {
        actions.push(...lastTeardown);
        actions.push(ops.removeStateDir());
      }
    }
  }
  return { errors: [], warnings: [], actions };
}

/** Routes recorded as going via `bridge` that the kernel lost (bridge recreated): the network puts them back. */
export function routesToRestore(bridge: string, o: RouteObservation): Action[] {
  return o.records
    .filter((r) => r.device === bridge && !o.kernel.some((k) => sameKey(k, r) && isOurs(k)))
    .map((r) => ops.ip(`restore route ${r.destination}`, routeArgs("replace", r), routeArgs("del", r)));
}

function describe(r: KernelRoute): string {
  return [
    r.dst,
    r.gateway && `via ${r.gateway}`,
    r.dev && `dev ${r.dev}`,
    r.protocol && `proto ${r.protocol}`,
  ]
    .filter(Boolean)
    .join(" ");
}
