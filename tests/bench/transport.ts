// The SSH transport's figures, on a lab host, through provider/host (the provider's own transport): what the
// transport tests once held as wall-clock limits and now check by behaviour (Nagle off, the timeout's error).
import * as fs from "node:fs";
import { closeAllConnections, connect, ConnectionArgs } from "../../provider/host";
import { LabHost } from "../lab/lab";
import { tcpNoDelayTo } from "../support/sockets";

/** On the lab's management network, with no host behind it: only the connect timeout ends a dial there. */
const UNREACHABLE = "198.18.0.250";
export const CONNECT_TIMEOUT_MS = 1500;

export interface TransportFigures {
  /** New connection up to the end of its first exec. */
  connectMs: number;
  sequential100Ms: number;
  parallel50Ms: number;
  /** TCP_NODELAY as the kernel has it on the connection's socket. */
  noDelay: boolean;
  /** From the dial to the timeout's error, for CONNECT_TIMEOUT_MS. */
  timeoutFailMs: number;
  timeoutError: string;
}

const now = () => performance.now();

export async function transportFigures(h: LabHost): Promise<TransportFigures> {
  const conn: ConnectionArgs = {
    host: h.address,
    port: h.port,
    user: "root",
    privateKey: fs.readFileSync(h.privateKeyPath, "utf8"),
    hostKey: h.hostKey,
  };
  await closeAllConnections();
  try {
    let t = now();
    const host = await connect(conn);
    await host.runChecked("true");
    const connectMs = now() - t;
    t = now();
    for (let i = 0; i < 100; i++) await host.runChecked("true");
    const sequential100Ms = now() - t;
    t = now();
    await Promise.all(Array.from({ length: 50 }, () => host.runChecked("true")));
    const parallel50Ms = now() - t;
    const noDelay = tcpNoDelayTo(h.address, h.port).every((s) => s.noDelay);
    t = now();
    const err = await connect({ ...conn, host: UNREACHABLE, connectTimeoutMs: CONNECT_TIMEOUT_MS }).then(
      () => new Error(`${UNREACHABLE} answered`),
      (e: Error) => e,
    );
    const timeoutFailMs = now() - t;
    return { connectMs, sequential100Ms, parallel50Ms, noDelay, timeoutFailMs, timeoutError: err.message };
  } finally {
    await closeAllConnections();
  }
}
