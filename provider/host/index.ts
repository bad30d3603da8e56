// The transport: how virtnet reaches a host. `connect` is the entry point for resources.
import { ValidationError, containsUnknown } from "../model/validation";
import { ConnectionArgs, Host } from "./host";
import { SshHost } from "./ssh";
import { validateConnection } from "./validate";

export * from "./host";
export { validateConnection, ConnectionValidation, isValidHostName } from "./validate";
export { SshConnectError, HostKeyMismatchError, SudoPasswordError, ConnectErrorKind } from "./errors";
export { fingerprintOf, parseHostKey } from "./hostkey";
export { buildCommand, SCRIPT_NAME } from "./command";
export { LocalHost, LocalHostOptions } from "./local";
export {
  SshHost,
  connectFresh,
  hostLabel,
  poolKey,
  connectionStats,
  resetConnectionStats,
  closeAllConnections,
  configurePool,
  ConnectionStat,
  PoolOptions,
} from "./ssh";

/**
 * The pooled SSH host for a connection, connected (host key checked, logged in). Rejects with a
 * ValidationError for invalid or still-unknown arguments, and with SshConnectError when it cannot connect.
 */
export async function connect(conn: ConnectionArgs): Promise<Host> {
  const v = validateConnection(conn);
  if (v.errors.length) throw new ValidationError(v.errors);
  if (containsUnknown(conn))
    throw new ValidationError([
      { property: "connection", reason: "is not known yet (preview): cannot connect" },
    ]);
  return new SshHost(conn).connect();
}
