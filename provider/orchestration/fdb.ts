// A network's forwarding database, read from its bridge (getFdb).
import { Host, tail } from "../host/host";
import { Fdb, parseFdb } from "../observe/fdb";
import { FDB_SCRIPT } from "../ops/probe";
import { withinDeadline } from "./deadline";
import { NetworkError } from "./errors";

/** The bridge's FDB and ports, like `bridge fdb show br <bridge>` and `bridge link`. */
export async function readFdb(host: Host, network: string, bridge: string): Promise<Fdb> {
  const step = "read the forwarding database";
  const r = await withinDeadline(host, network, step, host.run(FDB_SCRIPT, { args: [bridge], step }));
  if (r.code === 2)
    throw new NetworkError(
      host.label,
      network,
      "read the forwarding database",
      `bridge ${bridge} does not exist`,
    );
  if (r.code !== 0)
    throw new NetworkError(
      host.label,
      network,
      "read the forwarding database",
      `exit ${r.code}: ${tail(r.stderr)}`,
    );
  return parseFdb(r.stdout, bridge);
}
