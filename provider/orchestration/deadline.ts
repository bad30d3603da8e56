// Every operation on a host ends: the overall deadline of connection.operationTimeoutMs.
import { Host } from "../host/host";
import { NetworkError } from "./errors";

/** connection.operationTimeoutMs's default: a few minutes, longer than any round seen (200 creates: ~12 s). */
export const DEFAULT_OPERATION_TIMEOUT_MS = 300_000;

/**
 * `work`, or an error naming the host, `name` and `step` once the host's deadline has passed. What still runs
 * on the host then is left to finish or fail on its own (a round's script undoes its own failed steps).
 */
export function withinDeadline<T>(host: Host, name: string, step: string, work: Promise<T>): Promise<T> {
  const ms = host.operationTimeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new NetworkError(
            host.label,
            name,
            step,
            `did not finish within ${ms / 1000} s (connection.operationTimeoutMs); ` +
              "the host may still complete it: check with a refresh",
          ),
        ),
      ms,
    );
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
