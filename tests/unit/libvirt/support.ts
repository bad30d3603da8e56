// Helpers of the libvirt XML tests: the fixture corpus, libvirt's own schema check, and the meaning of a
// network definition read independently of provider/libvirt (so that a round trip is judged by another reader).
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { XMLParser } from "fast-xml-parser";
import * as ipaddr from "ipaddr.js";

export const FIXTURES = path.resolve(__dirname, "../../../../tests/fixtures/libvirt");

export function fixtureNames(): string[] {
  return fs
    .readdirSync(FIXTURES)
    .filter((f) => f.endsWith(".xml"))
    .map((f) => f.slice(0, -4))
    .sort();
}

export const validFixtures = (): string[] => fixtureNames().filter((n) => !n.startsWith("invalid-"));
export const invalidFixtures = (): string[] => fixtureNames().filter((n) => n.startsWith("invalid-"));

/** Fixtures that are not libvirt XML on purpose (they test what virtnet does with non-libvirt input). */
export const NOT_LIBVIRT = ["forward-mode-none", "unknown-elements"];

export function readFixture(name: string): string {
  return fs.readFileSync(path.join(FIXTURES, `${name}.xml`), "utf8");
}

/** libvirt's own schema check (libvirt-clients' virt-xml-validate, with xmllint): throws with its output. */
export function expectLibvirtValid(xml: string, label: string): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "virtnet-libvirt-"));
  const file = path.join(dir, `${label}.xml`);
  try {
    fs.writeFileSync(file, xml);
    const r = spawnSync("virt-xml-validate", [file, "network"], { encoding: "utf8" });
    if ((r.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT")
      throw new Error("virt-xml-validate is missing: apt-get install libvirt-clients libxml2-utils");
    const out = `${r.stdout}${r.stderr}`;
    if (r.status !== 0 || !out.includes("validates"))
      throw new Error(`virt-xml-validate refuses ${label} (exit ${r.status}):\n${out}\n${xml}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---- An independent reading of libvirt network XML -------------------------------------------------------

type Obj = Record<string, any>;
const reader = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@",
  isArray: (_name: string, _path: unknown, _leaf: boolean, isAttribute: boolean) => !isAttribute,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
});
const obj = (x: unknown): Obj => (x && typeof x === "object" ? (x as Obj) : {});
const textOf = (x: unknown): string => (typeof x === "string" ? x : String(obj(x)["#text"] ?? ""));
const first = (e: Obj, name: string): Obj | undefined => (e[name] ? obj(e[name][0]) : undefined);
const all = (e: Obj, name: string): Obj[] => ((e[name] as unknown[]) ?? []).map(obj);

function classful(a: string): number {
  const o = Number(a.split(".")[0]);
  return o < 128 ? 8 : o < 192 ? 16 : 24;
}

function isV6(e: Obj): boolean {
  return e["@family"] === "ipv6" || String(e["@address"] ?? "").includes(":");
}

function prefixOf(e: Obj): number {
  if (e["@prefix"] !== undefined) return Number(e["@prefix"]);
  if (isV6(e)) return 64;
  if (e["@netmask"] !== undefined) return ipaddr.IPv4.parse(e["@netmask"]).prefixLengthFromSubnetMask()!;
  return classful(e["@address"]);
}

const addressNumber = (a: string) =>
  ipaddr
    .parse(a)
    .toByteArray()
    .reduce((v, x) => v * 256n + BigInt(x), 0n);
const byStart = (x: { start: string }, y: { start: string }) => {
  const [a, b] = [addressNumber(x.start), addressNumber(y.start)];
  return a < b ? -1 : a > b ? 1 : 0;
};
const normal = (a: string) => ipaddr.parse(a).toString();
const num = (v: unknown) => (v === undefined ? undefined : Number(v));
const UNIT: Record<string, number> = { seconds: 1, minutes: 60, hours: 3600 };

function leaseSeconds(range: Obj): number | "infinite" {
  const lease = first(range, "lease");
  if (!lease) return 3600; // dnsmasq's default, which libvirt and virtnet both leave in place
  const n = Number(lease["@expiry"]);
  return n === 0 ? "infinite" : n * UNIT[lease["@unit"] ?? "minutes"];
}

/** CNAME and MX records among a network's <dnsmasq:options> (libvirt's passthrough to its dnsmasq). */
function dnsmasqRecords(n: Obj): { cname: string[][]; mx: (string | number)[][] } {
  const prefix = Object.keys(n)
    .find((k) => k.startsWith("@xmlns:") && n[k] === "http://libvirt.org/schemas/network/dnsmasq/1.0")
    ?.slice("@xmlns:".length);
  const values = prefix
    ? all(n, `${prefix}:options`).flatMap((o) => all(o, `${prefix}:option`).map((x) => String(x["@value"])))
    : [];
  const fields = (kind: string) =>
    values.filter((v) => v.startsWith(`${kind}=`)).map((v) => v.slice(kind.length + 1).split(","));
  return {
    cname: fields("cname").flatMap((f) => f.slice(0, -1).map((alias) => [alias, f[f.length - 1]])),
    mx: fields("mx-host").map(([domain, target, preference]) => [domain, target, Number(preference ?? 1)]),
  };
}

/**
 * What a libvirt network definition means, in the parts virtnet supports, with libvirt's defaults filled in:
 * two definitions with the same meaning build the same network.
 */
export function meaning(xml: string): Obj {
  const n = obj(reader.parse(xml).network[0]);
  const fwd = first(n, "forward");
  let mode = fwd ? (fwd["@mode"] ?? "nat") : "isolated";
  if (mode === "none") mode = "isolated";
  const ifaces = fwd ? all(fwd, "interface") : [];
  const dev =
    fwd && (mode === "nat" || mode === "route")
      ? (fwd["@dev"] ?? (ifaces.length === 1 ? ifaces[0]["@dev"] : undefined))
      : undefined;
  const natEl = mode === "nat" && fwd ? first(fwd, "nat") : undefined;
  const natAddress = natEl && first(natEl, "address");
  const natPort = natEl && first(natEl, "port");
  const b = first(n, "bridge") ?? {};
  const d = first(n, "dns") ?? {};
  const dnsEnabled = d["@enable"] !== "no";
  const ip = all(n, "ip").find((x) => !isV6(x));
  const ip6 = all(n, "ip").find((x) => isV6(x));
  const dhcp = ip && first(ip, "dhcp");
  const dhcp6 = ip6 && first(ip6, "dhcp");
  const ranges = [...(dhcp ? all(dhcp, "range") : []), ...(dhcp6 ? all(dhcp6, "range") : [])];
  const domain = first(n, "domain");
  return {
    name: textOf(n.name[0]),
    mode,
    forwardDevice: dev,
    nat:
      mode === "nat"
        ? {
            address: natAddress ? { start: natAddress["@start"], end: natAddress["@end"] } : undefined,
            ports: natPort
              ? { start: Number(natPort["@start"]), end: Number(natPort["@end"]) }
              : { start: 1024, end: 65535 },
            ipv6: natEl?.["@ipv6"] === "yes",
          }
        : undefined,
    bridge: {
      name: b["@name"],
      stp: (b["@stp"] ?? "on") === "on",
      // With STP on, the kernel never runs a forward delay below 2 s.
      delay: Math.max(Number(b["@delay"] ?? 0), (b["@stp"] ?? "on") === "on" ? 2 : 0),
      mtu: num(first(n, "mtu")?.["@size"]),
      mac: first(n, "mac") ? String(first(n, "mac")!["@address"]).toLowerCase() : undefined,
    },
    domain: domain ? { name: domain["@name"], localOnly: domain["@localOnly"] === "yes" } : undefined,
    // libvirt allows no records in a disabled <dns>.
    dns: {
      enabled: dnsEnabled,
      forwarders: all(d, "forwarder")
        .filter((f) => f["@addr"] !== undefined)
        .map((f) => ({ addr: normal(f["@addr"]), domain: f["@domain"] })),
      hosts: all(d, "host").map((h) => ({ ip: h["@ip"], hostnames: (h.hostname as unknown[]).map(textOf) })),
      srv: all(d, "srv").map((r) => ({
        service: r["@service"],
        protocol: r["@protocol"],
        domain: r["@domain"],
        target: r["@target"],
        port: num(r["@port"]),
        priority: num(r["@priority"]),
        weight: num(r["@weight"]),
      })),
      txt: all(d, "txt").map((t) => ({ name: t["@name"], value: t["@value"] })),
      ...dnsmasqRecords(n),
    },
    ipv4: ip ? { address: ip["@address"], prefix: prefixOf(ip) } : undefined,
    ipv6: ip6 ? { address: normal(ip6["@address"]), prefix: prefixOf(ip6) } : undefined,
    ranges: ranges
      .map((r) => ({ start: normal(r["@start"]), end: normal(r["@end"]), lease: leaseSeconds(r) }))
      .sort(byStart),
    // virtnet reserves by MAC, on IPv4 ranges.
    reservations:
      dhcp && all(dhcp, "range").length
        ? all(dhcp, "host")
            .filter((h) => h["@mac"] !== undefined)
            .map((h) => ({ mac: String(h["@mac"]).toLowerCase(), ip: h["@ip"], name: h["@name"] }))
        : [],
    routes: all(n, "route").map((r) => ({
      destination: `${normal(r["@address"])}/${prefixOf(r)}`,
      gateway: normal(r["@gateway"]),
      metric: Number(r["@metric"] ?? 1),
    })),
  };
}

// ---- Every element and attribute of a document ------------------------------------------------------------

export interface Item {
  path: string; // e.g. "network/ip/dhcp/range"
  name: string;
  attrs: Record<string, string>;
  text: string;
  children: Item[];
}

const ordered = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: "",
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  ignoreDeclaration: true,
});

function toItem(entry: Obj, parentPath: string): Item | undefined {
  const name = Object.keys(entry).find((k) => k !== ":@");
  if (!name || name === "#text") return undefined;
  const p = parentPath ? `${parentPath}/${name}` : name;
  const kids = (entry[name] as Obj[]) ?? [];
  return {
    path: p,
    name,
    attrs: entry[":@"] ?? {},
    text: kids
      .filter((k) => "#text" in k)
      .map((k) => String(k["#text"]))
      .join(""),
    children: kids.map((k) => toItem(k, p)).filter((x): x is Item => x !== undefined),
  };
}

export function documentTree(xml: string): Item {
  return (ordered.parse(xml) as Obj[]).map((e) => toItem(e, "")).find((x) => x !== undefined)!;
}
