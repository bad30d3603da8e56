// The error of a failure on a host.

/** A failure on a host, naming the host, the network (or "route <name>") and the step; never a secret. */
export class NetworkError extends Error {
  constructor(
    readonly hostLabel: string,
    readonly network: string,
    readonly step: string,
    readonly detail: string,
  ) {
    super(
      `host ${hostLabel}, ${network.startsWith("route ") ? network : `network "${network}"`}: ${step}: ${detail}`,
    );
    this.name = "NetworkError";
  }
}
