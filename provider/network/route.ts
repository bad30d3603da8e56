// Static routes: validation, and the pure planner for one route. virtnet marks its kernel routes with its own
// route protocol number, so the kernel itself tells which routes are virtnet's.
import { quote } from "shell-quote";
import {
  GENERATION_FILE,
  ROUTE_PROTO,
  routeRecordPath,
  routeRestorePath,
  ROUTES_DIR,
  STATE_DIR,
} from "../naming";
import { RouteSpec } from "../model/staticRoute";
import type { Action, Plan } from "./plan";

/** The last teardown on a host: virtnet's state directory goes, with its generation token. */
export function removeStateDirAction(): Action {
  return {
    name: `remove directory ${STATE_DIR}`,
    run: `rm -f -- ${sh(GENERATION_FILE)}; rmdir ${sh(STATE_DIR)} 2>/dev/null; :`,
  };
}

/** A route as the kernel lists it (ip -j route). */
export interface KernelRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  metric?: number;
  protocol?: string | number;
}

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

function ipFamily(spec: RouteSpec): string {
  return spec.family === 4 ? "-4" : "-6";
}

export function routeArgv(
  verb: "replace" | "del" | "add",
  spec: RouteSpec,
  gateway = spec.gateway,
  device = spec.device,
): string[] {
  const argv = ["ip", ipFamily(spec), "route", verb, spec.destination, "via", gateway];
  if (device) argv.push("dev", device);
  argv.push("metric", String(spec.metric), "proto", String(ROUTE_PROTO));
  return argv;
}

export interface RouteObservation {
  kernel: KernelRoute[]; // every route of the family in the main table
  records: RouteSpec[];
  /** `ip route get <gateway>` as JSON, when a gateway was asked about. */
  gatewayLookup?: { gateway?: string; dev?: string };
  dirs: string[];
}

const sh = (...argv: string[]) => quote(argv);

/** Actions that make one route true; errors when the host forbids it. */
export function planRoute(spec: RouteSpec, o: RouteObservation): Plan {
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
  if (errors.length) return { errors, warnings: [], actions: [] };

  const actions: Action[] = [];
  for (const d of [STATE_DIR, ROUTES_DIR])
    if (!o.dirs.includes(d))
      actions.push({
        name: `create directory ${d}`,
        run: sh("make_dir", "0755", d),
        undo: sh("rmdir", d),
      });
  // The old kernel route goes when the key (destination, metric) changed.
  if (
    record &&
    (record.destination !== spec.destination ||
      record.metric !== spec.metric ||
      record.family !== spec.family)
  ) {
    const old = o.kernel.find((r) => sameKey(r, record) && isOurs(r));
    if (old)
      actions.push({
        name: `remove route ${record.destination}`,
        run: sh(...routeArgv("del", record)),
        undo: sh(...routeArgv("replace", record)),
      });
  }
  const current = conflict && isOurs(conflict) ? conflict : undefined;
  const matches =
    current && current.gateway === spec.gateway && (!spec.device || current.dev === spec.device);
  if (!matches) {
    actions.push({
      name: current ? `change route ${spec.destination}` : `add route ${spec.destination}`,
      run: sh(...routeArgv("replace", spec)),
      undo: current
        ? sh(...routeArgv("replace", spec, current.gateway!, current.dev))
        : sh(...routeArgv("del", spec)),
    });
  }
  const text = JSON.stringify(spec) + "\n";
  const prev = record ? JSON.stringify(record) + "\n" : undefined;
  if (text !== prev) {
    const path = routeRecordPath(spec.name);
    actions.push({
      name: `write ${path}`,
      run: sh("write_file", path, "0644", text),
      undo: prev === undefined ? sh("rm", "-f", path) : sh("write_file", path, "0644", prev),
    });
    // What the boot-time restore runs for this route.
    const restore = routeRestorePath(spec.name);
    const line = (r: RouteSpec) => sh(...routeArgv("replace", r)) + "\n";
    actions.push({
      name: `write ${restore}`,
      run: sh("write_file", restore, "0644", line(spec)),
      undo: record ? sh("write_file", restore, "0644", line(record)) : sh("rm", "-f", restore),
    });
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
      actions.push({ name: `remove route ${record.destination}`, run: sh(...routeArgv("del", record)) });
    actions.push({
      name: `remove ${routeRecordPath(name)}`,
      run: sh("rm", "-f", routeRecordPath(name), routeRestorePath(name)),
    });
    if (o.records.length === 1) {
      actions.push({ name: `remove directory ${ROUTES_DIR}`, run: `rmdir ${sh(ROUTES_DIR)} 2>/dev/null; :` });
      if (!otherStateLeft) {
        actions.push(...lastTeardown);
        actions.push(removeStateDirAction());
      }
    }
  }
  return { errors: [], warnings: [], actions };
}

/** Routes recorded as going via `bridge` that the kernel lost (bridge recreated): the network puts them back. */
export function routesToRestore(bridge: string, o: RouteObservation): Action[] {
  return o.records
    .filter((r) => r.device === bridge && !o.kernel.some((k) => sameKey(k, r) && isOurs(k)))
    .map((r) => ({
      name: `restore route ${r.destination}`,
      run: sh(...routeArgv("replace", r)),
      undo: sh(...routeArgv("del", r)),
    }));
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
