// How a resource's connection inputs become a ConnectionArgs: the resource's own values, its secret
// credentials (kept in a separate secret property by the SDK), and the provider's configured defaults.
import { connect, validateConnection } from "../host";
import { ConnectionArgs, Host } from "../host/host";
import { ValidationError } from "../validation";

/** Secret parts of a connection; the SDK keeps them in the `__credentials` property, marked secret. */
export interface Credentials {
  privateKey?: string;
  privateKeyPassphrase?: string;
  password?: string;
  proxy?: Credentials;
}

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

export const SECRET_FIELDS = ["privateKey", "privateKeyPassphrase", "password"] as const;

/** Splits a user's connection into its public part and its secret part (recursively through proxy). */
export function splitConnection(conn: Record<string, any>): {
  connection: Record<string, any>;
  credentials?: Credentials;
} {
  const connection: Record<string, any> = {};
  const credentials: Credentials = {};
  for (const [k, v] of Object.entries(conn)) {
    if (v === undefined) continue;
    if ((SECRET_FIELDS as readonly string[]).includes(k)) (credentials as any)[k] = v;
    else if (k === "proxy" && v && typeof v === "object") {
      const inner = splitConnection(v);
      connection.proxy = inner.connection;
      if (inner.credentials) credentials.proxy = inner.credentials;
    } else connection[k] = v;
  }
  return Object.keys(credentials).length ? { connection, credentials } : { connection };
}

function merge(conn: Record<string, any>, creds: Credentials | undefined): Record<string, any> {
  const out: Record<string, any> = { ...conn };
  for (const k of SECRET_FIELDS) if (creds?.[k] !== undefined) out[k] = creds[k];
  if (conn.proxy) out.proxy = merge(conn.proxy, creds?.proxy);
  return out;
}

/** The full connection: resource values win over stack-config defaults. */
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
  return out as ConnectionArgs;
}

/** The pooled host of a resource's `connection` and `__credentials` properties (plus stack-config defaults). */
export async function connectTo(props: Record<string, any>): Promise<Host> {
  const conn = resolveConnection(props.connection, props.__credentials as Credentials | undefined);
  const v = validateConnection(conn);
  if (v.errors.length) throw new ValidationError(v.errors);
  return connect(conn);
}
