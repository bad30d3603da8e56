// Validation of the `connection` argument. Pure: no I/O. Reasons never repeat a value (a secret could be
// anywhere a user mistyped it), and Pulumi's preview-unknown value is accepted in every field.
import { isIP } from "net";
import { isUnknown, PropertyError, Problems } from "../model/validation";
import { ConnectionArgs } from "./host";
import { parseHostKey } from "./hostkey";

export const DEFAULT_PORT = 22;
export const DEFAULT_USER = "root";
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_RETRIES = 3;
export const MAX_PROXY_DEPTH = 4;

const KNOWN_KEYS: (keyof ConnectionArgs)[] = [
  "host",
  "port",
  "user",
  "privateKey",
  "privateKeyPassphrase",
  "password",
  "agentSocket",
  "hostKey",
  "insecureIgnoreHostKey",
  "sudo",
  "proxy",
  "connectTimeoutMs",
  "retries",
  "operationTimeoutMs",
];

// Host names: dot-separated labels of letters, digits, '-' and '_' (seen in internal names), not starting
// or ending with '-'. Anything else (spaces, quotes, '$', ';', '@', '/', ...) is refused.
const HOST_LABEL = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;
// POSIX portable user names (as useradd accepts them), optionally ending in '$' (Samba machine accounts).
const USER = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$/;
const PRIVATE_KEY = /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]+-----END \1PRIVATE KEY-----/;
const PUTTY_KEY = /^PuTTY-User-Key-File-[23]: /m;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

export function isValidHostName(host: string): boolean {
  if (isIP(host) !== 0) return true;
  const name = host.endsWith(".") ? host.slice(0, -1) : host;
  if (name.length === 0 || name.length > 253) return false;
  return name.split(".").every((label) => HOST_LABEL.test(label));
}

/** Result of validateConnection: property-named errors, and the value when there are none. */
export interface ConnectionValidation {
  errors: PropertyError[];
  value?: ConnectionArgs;
}

/**
 * Checks a `connection` argument. Fields holding Pulumi's unknown value are skipped; `value` is the input
 * (known keys only) when there are no errors, and may still contain unknowns.
 */
export function validateConnection(args: unknown, path = "connection"): ConnectionValidation {
  const problems = new Problems();
  const value = check(args, path, problems, 0);
  return problems.ok && value ? { errors: [], value } : { errors: problems.errors };
}

function check(args: unknown, path: string, p: Problems, depth: number): ConnectionArgs | undefined {
  if (isUnknown(args)) return args as unknown as ConnectionArgs;
  if (args === undefined || args === null) {
    p.add(path, "is required: an object with at least `host` and a host key (or insecureIgnoreHostKey)");
    return undefined;
  }
  if (typeof args !== "object" || Array.isArray(args)) {
    p.add(path, "must be an object");
    return undefined;
  }
  const a = args as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(a)) {
    if (v === undefined) continue;
    if (!(KNOWN_KEYS as string[]).includes(k)) {
      p.add(`${path}.${k}`, `is not a connection property; expected one of ${KNOWN_KEYS.join(", ")}`);
      continue;
    }
    out[k] = v;
  }
  const known = (k: string) => a[k] !== undefined && !isUnknown(a[k]);
  const str = (k: string, what = "a string"): string | undefined => {
    if (!known(k)) return undefined;
    if (typeof a[k] !== "string") {
      p.add(`${path}.${k}`, `must be ${what}`);
      return undefined;
    }
    return a[k] as string;
  };

  // host
  if (a.host === undefined || a.host === "") p.add(`${path}.host`, "is required: a host name or IP address");
  else {
    const host = str("host", "a host name or IP address");
    if (host !== undefined) {
      if (/\s/.test(host) || CONTROL.test(host))
        p.add(`${path}.host`, "must not contain whitespace or control characters");
      else if (host.startsWith("[") && host.endsWith("]"))
        p.add(
          `${path}.host`,
          "must be a plain IPv6 address, without brackets; set the port in connection.port",
        );
      else if (!isValidHostName(host))
        p.add(
          `${path}.host`,
          "must be a host name (letters, digits, '-', '_', dot-separated) or an IPv4/IPv6 address, without user, port or shell characters",
        );
    }
  }

  // port
  if (known("port")) {
    const port = a.port;
    if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535)
      p.add(`${path}.port`, "must be an integer from 1 to 65535");
  }

  // user
  const user = str("user", "a user name");
  if (user !== undefined && !USER.test(user))
    p.add(
      `${path}.user`,
      "must be a POSIX user name: a letter or '_' then letters, digits, '_', '.', '-' (at most 32 characters)",
    );

  // credentials: reasons never include the values
  const privateKey = str("privateKey", "a string holding a private key (PEM or OpenSSH format)");
  if (privateKey !== undefined) {
    if (!PRIVATE_KEY.test(privateKey) && !PUTTY_KEY.test(privateKey))
      p.add(
        `${path}.privateKey`,
        'does not look like a private key: expected the text of a key file, from "-----BEGIN ... PRIVATE KEY-----" to its END line',
      );
    else if (/-----BEGIN [A-Z ]*PUBLIC KEY-----/.test(privateKey) || /^ssh-[a-z0-9]+ AAAA/.test(privateKey))
      p.add(`${path}.privateKey`, "holds a public key; the private key file is needed");
    else if (
      a.privateKeyPassphrase === undefined &&
      (/^Proc-Type: 4,ENCRYPTED/m.test(privateKey) ||
        /-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(privateKey) ||
        isEncryptedOpenSshKey(privateKey))
    )
      p.add(
        `${path}.privateKeyPassphrase`,
        "is required: connection.privateKey is encrypted with a passphrase",
      );
  }
  str("privateKeyPassphrase");
  if (a.privateKeyPassphrase !== undefined && a.privateKey === undefined)
    p.add(`${path}.privateKeyPassphrase`, "is set but connection.privateKey is not");
  str("password");
  const agent = str("agentSocket", "the path of an ssh-agent socket");
  if (agent !== undefined && (!agent.startsWith("/") || CONTROL.test(agent)))
    p.add(`${path}.agentSocket`, "must be an absolute path without control characters");
  if (a.privateKey === undefined && a.password === undefined && a.agentSocket === undefined)
    p.add(
      path,
      "needs a way to log in: set connection.privateKey, connection.password or connection.agentSocket, " +
        "or run the deployment with an ssh-agent holding the key (SSH_AUTH_SOCK)",
    );

  // host key
  if (known("insecureIgnoreHostKey") && typeof a.insecureIgnoreHostKey !== "boolean")
    p.add(`${path}.insecureIgnoreHostKey`, "must be true or false");
  const hostKey = str("hostKey", 'an OpenSSH public-key line or a "SHA256:..." fingerprint');
  if (hostKey !== undefined) {
    const pin = parseHostKey(hostKey);
    if (typeof pin === "string") p.add(`${path}.hostKey`, pin);
  } else if (
    a.hostKey === undefined &&
    a.insecureIgnoreHostKey !== true &&
    !isUnknown(a.insecureIgnoreHostKey)
  )
    p.add(
      `${path}.hostKey`,
      "is required: set connection.hostKey to the host's public key line (from /etc/ssh/ssh_host_ed25519_key.pub) " +
        "or its SHA256: fingerprint (ssh-keygen -lf), or insecureIgnoreHostKey: true to skip the check",
    );

  if (known("sudo") && typeof a.sudo !== "boolean") p.add(`${path}.sudo`, "must be true or false");
  if (known("connectTimeoutMs")) {
    const t = a.connectTimeoutMs;
    if (typeof t !== "number" || !Number.isInteger(t) || t < 100 || t > 600_000)
      p.add(`${path}.connectTimeoutMs`, "must be an integer from 100 to 600000 (milliseconds)");
  }
  if (known("operationTimeoutMs")) {
    const t = a.operationTimeoutMs;
    if (typeof t !== "number" || !Number.isInteger(t) || t < 1000 || t > 3_600_000)
      p.add(`${path}.operationTimeoutMs`, "must be an integer from 1000 to 3600000 (milliseconds)");
  }
  if (known("retries")) {
    const r = a.retries;
    if (typeof r !== "number" || !Number.isInteger(r) || r < 0 || r > 10)
      p.add(`${path}.retries`, "must be an integer from 0 to 10");
  }

  if (a.proxy !== undefined) {
    if (depth + 1 >= MAX_PROXY_DEPTH)
      p.add(`${path}.proxy`, `nests too deep: at most ${MAX_PROXY_DEPTH - 1} proxy hops`);
    else {
      const proxy = check(a.proxy, `${path}.proxy`, p, depth + 1);
      if (proxy !== undefined) out.proxy = proxy;
    }
  }
  return out as unknown as ConnectionArgs;
}

/** An "openssh-key-v1" private key whose cipher is not "none". */
function isEncryptedOpenSshKey(text: string): boolean {
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(text);
  if (!m) return false;
  const data = Buffer.from(m[1].replace(/\s+/g, ""), "base64");
  const magic = "openssh-key-v1\0";
  if (data.subarray(0, magic.length).toString("latin1") !== magic || data.length < magic.length + 4)
    return false;
  const n = data.readUInt32BE(magic.length);
  const cipher = data.subarray(magic.length + 4, magic.length + 4 + n).toString("latin1");
  return cipher !== "none";
}
