// A connection's secret fields, apart from the rest. Imports nothing: the SDK uses it in the program, where the
// SSH transport is never needed.

/** Secret parts of a connection; the SDK keeps them in the `__credentials` property, marked secret. */
export interface Credentials {
  privateKey?: string;
  privateKeyPassphrase?: string;
  password?: string;
  proxy?: Credentials;
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
