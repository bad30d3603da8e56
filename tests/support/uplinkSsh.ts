// SSH to a lab host over its uplink (eth0), not over its management link: a forwarder in the upstream
// namespace dials the host's sshd through upstream's br0 and the host's eth0 (upstream gets a route to the
// host's management address via its uplink address); the test process reaches the forwarder over a unix socket
// (a path, which crosses network namespaces), behind a TCP port on 127.0.0.1.
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { upstreamCommand, upstreamExec } from "../lab/lab";

const FORWARDER = `const net = require("net");
const [sock, host] = process.argv.slice(1);
require("fs").rmSync(sock, { force: true });
net.createServer((c) => {
  const t = net.connect(22, host);
  c.pipe(t); t.pipe(c);
  c.on("error", () => t.destroy()); t.on("error", () => c.destroy());
  c.on("close", () => t.destroy()); t.on("close", () => c.destroy());
}).listen(sock, () => console.log("ready"));`;

export class UplinkSsh {
  port = 0;
  private server?: net.Server;
  private child?: ChildProcess;
  private readonly sock = path.join(os.tmpdir(), `virtnet-uplink-ssh-${process.pid}.sock`);

  /** `address`: the host's sshd (its management address); `via`: its uplink address. */
  constructor(
    readonly address: string,
    readonly via: string,
  ) {}

  async start(): Promise<this> {
    const r = await upstreamExec(["ip", "route", "replace", `${this.address}/32`, "via", this.via]);
    if (r.code !== 0) throw new Error(`upstream route to ${this.address}: ${r.stderr}`);
    const [cmd, ...args] = upstreamCommand([process.execPath, "-e", FORWARDER, this.sock, this.address]);
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once("data", () => resolve());
      child.once("exit", (code) => reject(new Error(`the uplink forwarder exited (${code})`)));
    });
    this.server = net.createServer((c) => {
      const u = net.connect(this.sock);
      c.pipe(u);
      u.pipe(c);
      const end = () => {
        c.destroy();
        u.destroy();
      };
      for (const s of [c, u]) s.on("error", end).on("close", end);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.child?.kill();
    fs.rmSync(this.sock, { force: true });
    await upstreamExec(["ip", "route", "del", `${this.address}/32`]);
  }
}
