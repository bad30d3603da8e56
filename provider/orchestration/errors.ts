// The error of a failure on a host.

/**
 * A failure on a host, naming the host, what it was about and the step; never a secret. `network` is a
 * network's name, or the scope of another kind of host state, "<kind> <name>" (e.g. "route r1"): names are
 * validated and hold no blank, so a scope reads as it is.
 */
export class NetworkError extends Error {
  constructor(
    readonly hostLabel: string,
    readonly network: string,
    readonly step: string,
    readonly detail: string,
  ) {
    super(
      `host ${hostLabel}, ${network.includes(" ") ? network : `network "${network}"`}: ${step}: ${detail}`,
    );
    this.name = "NetworkError";
  }
}
