// The injection corpus of issue 7 ("Hostile input"), and every string input of VirtualNetwork, DhcpRange and
// StaticRoute as the provider's check() receives it. Shared by the unit tests and the lab tests.
import { utils } from "ssh2";

/** Marker files the payloads try to create. A test proves none of them ever appears. */
export const MARKER = "/tmp/hz-pwned";

/** The payloads, each on its own and appended to a valid value of the field (see `variants`). */
export const PAYLOADS: Record<string, string> = {
  "command substitution": `$(touch ${MARKER})`,
  backticks: `\`touch ${MARKER}\``,
  semicolon: `;touch ${MARKER}`,
  pipe: `|touch ${MARKER}`,
  "and-and": `&&touch ${MARKER}`,
  "single quote": `'; touch ${MARKER}; '`,
  "double quote": `"; touch ${MARKER}; "`,
  newline: `\ntouch ${MARKER}`,
  "dnsmasq option line": `\n dhcp-script=${MARKER}`,
  "nft flush": `"; flush ruleset;`,
  "parent directory": "../../../../tmp/hz-pwned",
  NUL: "a\u0000b",
  "10k characters": "a".repeat(10_000),
  "RTL override": "\u202Etxt.exe",
  "zero-width joiner": "a\u200Db",
};

/** Unicode look-alikes of a valid value: fullwidth letters and digits, Cyrillic 'а'/'е'/'о', RTL, ZWJ. */
export function lookalikes(valid: string): Record<string, string> {
  const fullwidth = valid.replace(/[!-~]/, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0));
  const cyr: Record<string, string> = { a: "а", e: "е", o: "о", c: "с", p: "р", x: "х" };
  const i = valid.search(/[aeocpx]/);
  const cyrillic = i >= 0 ? valid.slice(0, i) + cyr[valid[i]] + valid.slice(i + 1) : "а" + valid;
  const mid = Math.max(1, Math.floor(valid.length / 2));
  return {
    "fullwidth look-alike": fullwidth,
    "Cyrillic look-alike": cyrillic,
    "RTL override inside": valid.slice(0, mid) + "\u202E" + valid.slice(mid),
    "zero-width joiner inside": valid.slice(0, mid) + "\u200D" + valid.slice(mid),
  };
}

/** Every hostile value to try in a field whose valid value is `valid`. */
export function variants(valid: string): [label: string, value: string][] {
  const out: [string, string][] = [];
  for (const [k, p] of Object.entries(PAYLOADS)) {
    out.push([k, p]);
    out.push([`valid + ${k}`, valid + p]);
  }
  for (const [k, v] of Object.entries(lookalikes(valid))) out.push([k, v]);
  return out;
}

const hostPair = utils.generateKeyPairSync("ed25519");
const clientPair = utils.generateKeyPairSync("ed25519");

export const connection = () => ({
  host: "198.18.0.11",
  user: "root",
  hostKey: `${hostPair.public} root@hz`,
});
export const credentials = () => ({ privateKey: clientPair.private });

/** A VirtualNetwork's inputs as check() receives them, with every string field set to a valid value. */
export function networkInputs(): Record<string, any> {
  return {
    name: "hzbase",
    mode: "nat",
    firewallBackend: "auto",
    ipv4: { cidr: "10.230.1.0/24", gateway: "10.230.1.1" },
    ipv6: { cidr: "fd00:230:1::/64", gateway: "fd00:230:1::1" },
    forwardDevice: "eth0",
    nat: { addressRange: { start: "198.19.0.11", end: "198.19.0.11" }, ipv6: true },
    bridge: { name: "vn-hzbase", macAddress: "52:54:00:00:23:01", zone: "trusted" },
    domain: { name: "hz.test", localOnly: true },
    dns: {
      forwarders: ["10.230.1.53", { address: "10.230.1.54", domain: "corp.test" }],
      hosts: [{ ip: "10.230.1.10", hostnames: ["db"] }],
      srv: [{ service: "ldap", protocol: "tcp", domain: "hz.test", target: "db.hz.test", port: 389 }],
      txt: [{ name: "info.hz.test", value: "hello" }],
    },
    connection: connection(),
    __credentials: credentials(),
  };
}

/** A DhcpRange's inputs; `network` is what the SDK copies from the VirtualNetwork's outputs. */
export function rangeInputs(): Record<string, any> {
  return {
    name: "hzpool",
    start: "10.230.1.100",
    end: "10.230.1.199",
    leaseTime: "1h",
    hosts: [{ mac: "52:54:00:00:23:10", ip: "10.230.1.150", hostname: "db1" }],
    network: {
      name: "hzbase",
      bridgeName: "vn-hzbase",
      cidr: "10.230.1.0/24",
      gatewayIp: "10.230.1.1",
    },
    connection: connection(),
    __credentials: credentials(),
  };
}

/** A StaticRoute's inputs, via a network (so that network.* is there too). */
export function routeInputs(): Record<string, any> {
  return {
    name: "hzroute",
    destination: "10.231.0.0/16",
    gateway: "10.230.1.254",
    network: { name: "hzbase", bridgeName: "vn-hzbase", cidr: "10.230.1.0/24", gatewayIp: "10.230.1.1" },
    connection: connection(),
    __credentials: credentials(),
  };
}

/** Paths ("dns.hosts[0].ip") of every string field in an input object, secrets left out. */
export function stringPaths(v: unknown, prefix = ""): string[] {
  if (typeof v === "string") return [prefix];
  if (Array.isArray(v)) return v.flatMap((x, i) => stringPaths(x, `${prefix}[${i}]`));
  if (v && typeof v === "object")
    return Object.entries(v)
      .filter(([k]) => k !== "__credentials")
      .flatMap(([k, x]) => stringPaths(x, prefix ? `${prefix}.${k}` : k));
  return [];
}

function parsePath(path: string): (string | number)[] {
  return path
    .split(/\.|(?=\[)/)
    .map((p) => (p.startsWith("[") ? Number(p.slice(1, -1)) : p))
    .filter((p) => p !== "");
}

export function getPath(obj: any, path: string): any {
  return parsePath(path).reduce((o, k) => o[k], obj);
}

/** A deep copy of `obj` with the field at `path` set to `value`. */
export function withPath<T>(obj: T, path: string, value: unknown): T {
  const copy = JSON.parse(JSON.stringify(obj));
  const keys = parsePath(path);
  let o = copy;
  for (const k of keys.slice(0, -1)) o = o[k];
  o[keys[keys.length - 1]] = value;
  return copy;
}

/** Whether a check failure names the field at `path` (itself, or the object or list entry holding it). */
export function names(failureProperty: string, path: string): boolean {
  return (
    failureProperty === path ||
    path.startsWith(failureProperty + ".") ||
    path.startsWith(failureProperty + "[") ||
    failureProperty.startsWith(path + ".") ||
    failureProperty.startsWith(path + "[")
  );
}
