// Issue 7, hostile input, at the provider's check(): every string input of VirtualNetwork, DhcpRange and
// StaticRoute, set to each value of the injection corpus, is either refused with a failure that names that
// property, or accepted and proven harmless (the real nft and dnsmasq parse the rendered artifacts, and they
// hold exactly the lines virtnet meant to write).
import { expect } from "chai";
import { parseHostKey } from "../../../provider/host/hostkey";
import { check as checkNetwork } from "../../../provider/resources/network";
import { check as checkRange } from "../../../provider/resources/dhcpRange";
import { check as checkRoute } from "../../../provider/resources/staticRoute";
import {
  connection,
  getPath,
  names,
  networkInputs,
  rangeInputs,
  routeInputs,
  stringPaths,
  variants,
  withPath,
} from "./corpus";
import { dnsmasqOptions, dnsmasqTest, nftCheck } from "./harmless";

type Check = (olds: any, news: any) => { inputs: any; failures: { property: string; reason: string }[] };

interface Outcome {
  path: string;
  label: string;
  value: string;
  failures: { property: string; reason: string }[];
  inputs: any;
}

function run(check: Check, base: Record<string, any>, path: string): Outcome[] {
  return variants(getPath(base, path)).map(([label, value]) => {
    const r = check({}, withPath(base, path, value));
    return { path, label, value, failures: r.failures, inputs: r.inputs };
  });
}

const show = (o: Outcome) => `${o.path} <- ${o.label} ${JSON.stringify(o.value.slice(0, 60))}`;

/**
 * Refused outcomes must name the property; returns the accepted ones. A host key line's comment is free
 * text that never leaves this process (only the key type and blob are compared with what the host
 * presents), so a hostile comment is harmless: it is accepted when the pin is still the same key.
 */
function refusedNamingTheProperty(outcomes: Outcome[]): Outcome[] {
  const unnamed = outcomes.filter(
    (o) => o.failures.length > 0 && !o.failures.some((f) => names(f.property, o.path)),
  );
  expect(
    unnamed.map((o) => `${show(o)}: ${JSON.stringify(o.failures)}`),
    "refused without naming the property",
  ).to.deep.equal([]);
  const samePin = (o: Outcome) => {
    const pin = parseHostKey(o.value);
    return typeof pin !== "string" && pin.fingerprint === hostKeyPin().fingerprint;
  };
  return outcomes.filter((o) => o.failures.length === 0 && !(o.path === "connection.hostKey" && samePin(o)));
}

function hostKeyPin() {
  const pin = parseHostKey(connection().hostKey);
  if (typeof pin === "string") throw new Error(pin);
  return pin;
}

describe("hostile input at check: VirtualNetwork", function () {
  this.timeout(60_000);
  const base = networkInputs();
  const baseline = checkNetwork({}, base);

  it("accepts the corpus's valid base inputs (so each refusal below is the hostile value's)", () => {
    expect(baseline.failures).to.deep.equal([]);
    expect(nftCheck(baseline.inputs.rendered.nftables).ok).to.equal(true);
    expect(dnsmasqTest(baseline.inputs.rendered.dnsmasqConf).ok).to.equal(true);
  });

  // TXT values are free text by design (printable ASCII without '"' and '\'): they must render harmlessly.
  // Every other field must refuse every hostile value.
  const acceptedByDesign = ["dns.txt[0].value"];
  for (const path of stringPaths(base)) {
    it(`refuses every hostile value in ${path}${acceptedByDesign.includes(path) ? " or renders it harmlessly" : ""}`, () => {
      const accepted = refusedNamingTheProperty(run(checkNetwork, base, path));
      if (!acceptedByDesign.includes(path)) {
        expect(accepted.map(show), "accepted").to.deep.equal([]);
        return;
      }
      expect(accepted.length, "the TXT value's shell metacharacters reach the renderer").to.be.above(10);
      for (const o of accepted) {
        const rendered = o.inputs.rendered;
        expect(rendered.nftables, show(o)).to.equal(baseline.inputs.rendered.nftables);
        const t = dnsmasqTest(rendered.dnsmasqConf);
        expect(t.ok, `${show(o)}: ${t.output}`).to.equal(true);
        expect(dnsmasqOptions(rendered.dnsmasqConf), show(o)).to.deep.equal(
          dnsmasqOptions(baseline.inputs.rendered.dnsmasqConf),
        );
        expect(rendered.dnsmasqConf).to.include(`\ntxt-record=info.hz.test,"${o.value}"\n`);
      }
    });
  }
});

describe("hostile input at check: DhcpRange", function () {
  this.timeout(60_000);
  const base = rangeInputs();

  it("accepts the corpus's valid base inputs", () => {
    expect(checkRange({}, base).failures).to.deep.equal([]);
  });

  for (const path of stringPaths(base).filter((p) => !p.startsWith("network."))) {
    it(`refuses every hostile value in ${path}`, () => {
      const accepted = refusedNamingTheProperty(run(checkRange, base, path));
      expect(accepted.map(show), "accepted").to.deep.equal([]);
    });
  }
});

describe("hostile input at check: StaticRoute", function () {
  this.timeout(60_000);
  const base = routeInputs();

  it("accepts the corpus's valid base inputs", () => {
    expect(checkRoute({}, base).failures).to.deep.equal([]);
  });

  for (const path of stringPaths(base).filter((p) => !p.startsWith("network."))) {
    it(`refuses every hostile value in ${path}`, () => {
      const accepted = refusedNamingTheProperty(run(checkRoute, base, path));
      expect(accepted.map(show), "accepted").to.deep.equal([]);
    });
  }
});

// The network reference (`network: { name, bridgeName, cidr, ... }`) is copied by the SDK
// from a VirtualNetwork's outputs, but check() receives it like any other input (a plain object passes the
// SDK's `network as any`), and the provider uses it on the host: see reference.test.ts for what it does.
describe("hostile input at check: the network reference of DhcpRange and StaticRoute", function () {
  this.timeout(60_000);
  for (const [what, check, base] of [
    ["DhcpRange", checkRange, rangeInputs()],
    ["StaticRoute", checkRoute, routeInputs()],
  ] as const) {
    for (const path of stringPaths(base).filter((p) => p.startsWith("network."))) {
      it(`${what}: refuses every hostile value in ${path}`, () => {
        const accepted = refusedNamingTheProperty(run(check as Check, base, path));
        expect(accepted.map(show), "accepted").to.deep.equal([]);
      });
    }
  }
});

// Look-alikes in ASCII: inet_aton spellings that read as one address and mean another ("010" is octal 8,
// "10.1" is 10.0.0.1). spec.ts parses ipv4.cidr, ipv4.gateway and nat ranges, and dhcp.ts every DHCP
// address, as four-part decimal only; these fields take ipaddr.js's loose parser and store the other address.
describe("hostile input at check: IPv4 spellings that mean another address", () => {
  const cases: [what: string, check: Check, base: Record<string, any>, path: string, value: string][] = [
    ["VirtualNetwork", checkNetwork, networkInputs(), "dns.forwarders[0]", "10.230.1.053"],
    ["VirtualNetwork", checkNetwork, networkInputs(), "dns.forwarders[1].address", "0x0a.230.1.54"],
    ["VirtualNetwork", checkNetwork, networkInputs(), "dns.hosts[0].ip", "10.230.1.010"],
    ["StaticRoute", checkRoute, routeInputs(), "destination", "010.0.0.0/8"],
    ["StaticRoute", checkRoute, routeInputs(), "gateway", "10.230.1.0254"],
  ];
  for (const [what, check, base, path, value] of cases) {
    it(`${what} refuses ${path} = "${value}" instead of storing another address`, () => {
      const r = check({}, withPath(base, path, value));
      const rendered = r.inputs.rendered ?? {};
      const stored =
        typeof rendered === "string"
          ? rendered
          : `${(rendered.dnsmasqConf ?? "").match(/^server=.*$/gm)?.join(" ")} ${JSON.stringify(rendered.dnsmasqHosts)}`;
      expect(
        r.failures.some((f) => names(f.property, path)),
        `accepted; rendered as ${stored}`,
      ).to.equal(true);
    });
  }
});
