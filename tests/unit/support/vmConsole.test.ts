// The test VM's serial console as tests/support/vm.ts reads it: report lines among firmware and kernel output.
import { expect } from "chai";
import { ConsoleReports } from "../../support/vm";

describe("test VM: console reports", () => {
  it("finds reports after the firmware's escape sequences, across chunks, with CRLF", () => {
    const c = new ConsoleReports();
    const found = [
      c.add(
        "\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2)\r\nProbing EDD... o\x1bc\x1b[2J[    0.000000] Linux\r\n",
      ),
      c.add("\x1b[2JVM-INIT 1.50\r\nudhcpc: lease of 10.86.0.50 obtained\r\nVM-LEA"),
      c.add("SE 10.86.0.50 1.85\r\nVM-ROUTER 10.86.0.1\r\nVM-PING-OK gateway 10.86.0.1\r\nVM-READY\r\n"),
    ];
    expect(found).to.deep.equal([
      [],
      ["VM-INIT 1.50"],
      ["VM-LEASE 10.86.0.50 1.85", "VM-ROUTER 10.86.0.1", "VM-PING-OK gateway 10.86.0.1", "VM-READY"],
    ]);
    expect(c.field("LEASE")).to.equal("10.86.0.50");
    expect(c.field("ROUTER")).to.equal("10.86.0.1");
    expect(c.has("READY")).to.equal(true);
    expect(c.has("DONE")).to.equal(false);
  });

  it("ignores kernel words that merely contain VM-, and a report without a value", () => {
    const c = new ConsoleReports();
    c.add("[    0.1] kvm-clock: KVM-CLOCK ready\r\nVM-ROUTER \r\nVM-NO-LEASE\r\n");
    expect(c.lines).to.deep.equal(["VM-ROUTER", "VM-NO-LEASE"]);
    expect(c.field("ROUTER")).to.equal(null);
    expect(c.field("LEASE")).to.equal(null);
    expect(c.has("NO-LEASE")).to.equal(true);
    expect(c.has("LEASE")).to.equal(false);
  });

  it("keeps everything it received as the log, and gives its tail without carriage returns", () => {
    const c = new ConsoleReports();
    c.add("a\r\nb\r\nc");
    expect(c.log).to.equal("a\r\nb\r\nc");
    expect(c.tail(2)).to.equal("b\nc");
  });
});
