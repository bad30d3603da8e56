// The probe against a real kernel, in a private network and mount namespace (PrivateHost): the values it
// reads with the shell's own `read` (no process per file) must be the kernel's.
import { expect } from "chai";
import { buildNetworkSpec, NetworkSpec } from "../../../provider/network/spec";
import { PrivateHost } from "./privateHost";

describe("probe on a private namespace", function () {
  this.timeout(30_000);
  let host: PrivateHost;
  let spec: NetworkSpec;

  beforeEach(async () => {
    host = await PrivateHost.start();
    spec = buildNetworkSpec({ mode: "nat", ipv4: { cidr: "10.78.0.0/24" } }, "probe").spec!;
  });
  afterEach(() => host.close());

  for (const value of [1, 0]) {
    it(`reads IPv4 and IPv6 forwarding as the kernel has them (${value})`, () => {
      host.must(`sysctl -qw net.ipv4.ip_forward=${value} net.ipv6.conf.all.forwarding=${value}`);
      const o = host.observe(spec);
      expect({ v4: o.ipForward, v6: o.ip6Forward }).to.deep.equal({ v4: !!value, v6: !!value });
    });
  }

  it("reads fs.inotify.max_user_instances as the kernel has it", () => {
    const limit = Number(host.must("cat /proc/sys/fs/inotify/max_user_instances"));
    expect(host.observe(spec).inotify).to.deep.equal({ limit });
  });

  it("finds a running process behind the pid file only when it is alive, with its executable and argv", () => {
    const pidfile = "/var/lib/virtnet/probe.pid";
    const paths = { dnsmasqPid: pidfile };
    const sleeper = host.must(`sleep 30 >/dev/null 2>&1 & echo $! > ${pidfile}; cat ${pidfile}`).trim();
    const o = host.observeWith(spec, paths);
    expect(o.dnsmasq?.pid).to.equal(Number(sleeper));
    expect(o.dnsmasq?.exe).to.match(/\/sleep$/);
    expect(o.dnsmasq?.argv).to.deep.equal(["sleep", "30"]);
    host.must(`echo 999999 > ${pidfile}`);
    expect(host.observeWith(spec, paths).dnsmasq).to.equal(undefined);
  });
});
