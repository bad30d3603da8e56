// How a resource's connection inputs become a ConnectionArgs: the resource's own values, its secret
// credentials (kept in a separate secret property by the SDK), and the provider's configured defaults.
import { connect, validateConnection } from "../host";
import { ConnectionArgs, Host } from "../host/host";
import { ValidationError } from "../model/validation";
import { Credentials, SECRET_FIELDS } from "./credentials";

export { Credentials, SECRET_FIELDS, splitConnection } from "./credentials";

/** Stack configuration (`virtnet:host`, `virtnet:user`, `virtnet:privateKey`, `virtnet:hostKey`). */
export interface ProviderDefaults {
  host?: string;
  user?: string;
  privateKey?: string;
  hostKey?: string;
}

let defaults: ProviderDefaults = {};

export function configureDefaults(d: ProviderDefaults): void {
  defaults = Object.fromEntries(Object.entries(d).filter(([, v]) => v !== undefined && v !== ""));
}

/** Reads the defaults from a dynamic provider's configure request (anything with `get(key)`). */
export function configureFromStack(config: { get(key: string): string | undefined }): void {
  configureDefaults({
    host: config.get("virtnet:host"),
    user: config.get("virtnet:user"),
    privateKey: config.get("virtnet:privateKey"),
    hostKey: config.get("virtnet:hostKey"),
  });
}

function merge(conn: Record<string, any>, creds: Credentials | undefined): Record<string, any> {
  const out: Record<string, any> = { ...conn };
  for (const k of SECRET_FIELDS) if (creds?.[k] !== undefined) out[k] = creds[k];
  if (conn.proxy) out.proxy = merge(conn.proxy, creds?.proxy);
  return out;
}

/**
 * A hop with no key, password or agent socket of its own logs in through the ssh-agent of the process that
 * runs the provider (SSH_AUTH_SOCK), as ssh(1) does. Resolved when used, never stored: the socket's path
 * changes with every login session.
 */
function withAgent(c: Record<string, any>): Record<string, any> {
  const out = { ...c };
  const agent = process.env.SSH_AUTH_SOCK;
  if ([out.privateKey, out.password, out.agentSocket].every((v) => v === undefined) && agent)
    out.agentSocket = agent;
  if (out.proxy && typeof out.proxy === "object") out.proxy = withAgent(out.proxy);
  return out;
}

/** The full connection: resource values win over stack-config defaults, then the ssh-agent (withAgent). */
export function resolveConnection(
  connection: Record<string, any> | undefined,
  credentials?: Credentials,
): ConnectionArgs {
  const merged = merge(connection ?? {}, credentials);
  const out: Record<string, any> = { ...merged };
  if (out.host === undefined && defaults.host !== undefined) out.host = defaults.host;
  if (out.user === undefined && defaults.user !== undefined) out.user = defaults.user;
  if (out.hostKey === undefined && !out.insecureIgnoreHostKey && defaults.hostKey !== undefined)
    out.hostKey = defaults.hostKey;
  if (out.privateKey === undefined && out.password === undefined && defaults.privateKey !== undefined)
    out.privateKey = defaults.privateKey;
  return withAgent(out) as ConnectionArgs;
}

/** The pooled host of a resource's `connection` and `__credentials` properties (plus stack-config defaults). */
export async function connectTo(props: Record<string, any>): Promise<Host> {
  const conn = resolveConnection(props.connection, props.__credentials as Credentials | undefined);
  const v = validateConnection(conn);
  if (v.errors.length) throw new ValidationError(v.errors);
  return connect(conn);
}
