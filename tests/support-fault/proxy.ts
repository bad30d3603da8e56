// A TCP proxy between the provider (in the Pulumi plugin process) and a lab host's sshd, run in the test
// process, that a test can cut at a chosen moment: the faithful model of a network drop. Both sides see
// their TCP connection end, exactly as when a link or NAT state dies and the peer answers with FIN/RST.
import * as net from "node:net";

interface Pair {
  id: number;
  client: net.Socket;
  upstream: net.Socket;
  /** Host-to-client data held back while frozen. */
  held: Buffer[];
}

export class CutProxy {
  private server?: net.Server;
  private pairs = new Set<Pair>();
  private frozen = false;
  private cutDuringHandshake = 0;
  /** Connections accepted so far (each SSH dial is one). */
  accepted = 0;
  port = 0;

  constructor(
    readonly targetHost: string,
    readonly targetPort = 22,
  ) {}

  /** Listens on 127.0.0.1 (an ephemeral port). */
  async start(): Promise<this> {
    this.server = net.createServer((client) => this.onClient(client));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  private onClient(client: net.Socket): void {
    const id = ++this.accepted;
    const upstream = net.connect({ host: this.targetHost, port: this.targetPort });
    const pair: Pair = { id, client, upstream, held: [] };
    this.pairs.add(pair);
    const dropDuringHandshake = this.cutDuringHandshake > 0;
    if (dropDuringHandshake) this.cutDuringHandshake--;
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    let fromHost = 0;
    upstream.on("data", (d: Buffer) => {
      fromHost += d.length;
      // The host's banner and key exchange init have arrived: the client is mid-handshake now.
      // Nothing after it reaches the client, so the handshake cannot finish however late the cut comes.
      if (dropDuringHandshake) {
        if (fromHost === d.length) client.write(d, () => setTimeout(() => this.destroy(pair), 20));
        return;
      }
      if (this.frozen) pair.held.push(d);
      else client.write(d);
    });
    client.on("data", (d: Buffer) => upstream.write(d));
    const end = () => this.destroy(pair);
    client.on("error", end);
    upstream.on("error", end);
    client.on("close", end);
    upstream.on("close", end);
  }

  private destroy(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    pair.client.destroy();
    pair.upstream.destroy();
  }

  /** Connections open now. */
  get open(): number {
    return this.pairs.size;
  }

  /** The next `n` connections are dropped during the SSH handshake (right after the host's first bytes). */
  dropNextDuringHandshake(n: number): void {
    this.cutDuringHandshake = n;
  }

  /** Holds back everything the host sends (the client hears nothing); the client's data still flows. */
  freeze(): void {
    this.frozen = true;
  }

  /** Cuts every open connection: held data is never delivered. Later connections pass normally. */
  cut(): number {
    const n = this.pairs.size;
    for (const p of [...this.pairs]) this.destroy(p);
    this.frozen = false;
    return n;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
