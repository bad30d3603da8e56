// Host-key pins: parsing an OpenSSH public-key line or a "SHA256:" fingerprint, and comparing a presented key.
import { createHash } from "crypto";

/** Key types an OpenSSH public-key line may name, with the host-key algorithms ssh2 should offer for each. */
const KEY_TYPES: Record<string, string[] | undefined> = {
  "ssh-ed25519": ["ssh-ed25519"],
  "ssh-rsa": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
  "ecdsa-sha2-nistp256": ["ecdsa-sha2-nistp256"],
  "ecdsa-sha2-nistp384": ["ecdsa-sha2-nistp384"],
  "ecdsa-sha2-nistp521": ["ecdsa-sha2-nistp521"],
  "ssh-dss": ["ssh-dss"],
  // Security-key types cannot be host keys in practice; accepted for completeness, negotiated by default.
  "sk-ssh-ed25519@openssh.com": undefined,
  "sk-ecdsa-sha2-nistp256@openssh.com": undefined,
};

export type HostKeyPin =
  | { kind: "key"; type: string; blob: Buffer; fingerprint: string; algorithms?: string[] }
  | { kind: "fingerprint"; fingerprint: string };

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const FINGERPRINT = /^SHA256:([A-Za-z0-9+/]{43})=?$/;

/** "SHA256:<base64 without padding>" of a key blob, as `ssh-keygen -l` prints it. */
export function fingerprintOf(blob: Buffer): string {
  return "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
}

/** The key type written inside an SSH public-key blob (its first length-prefixed string). */
export function blobKeyType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const n = blob.readUInt32BE(0);
  if (n === 0 || n > 64 || 4 + n > blob.length) return undefined;
  return blob.subarray(4, 4 + n).toString("latin1");
}

/** Parses a pin; returns a reason string (never containing the value) when it is malformed. */
export function parseHostKey(value: string): HostKeyPin | string {
  const text = value.trim();
  const fp = FINGERPRINT.exec(text);
  if (fp) return { kind: "fingerprint", fingerprint: `SHA256:${fp[1]}` };
  if (text.startsWith("SHA256:"))
    return 'must be "SHA256:" followed by 43 base64 characters, as `ssh-keygen -l` prints it';
  const fields = text.split(/[ \t]+/);
  if (fields.length < 2)
    return 'must be an OpenSSH public-key line ("ssh-ed25519 AAAA... [comment]") or a "SHA256:..." fingerprint';
  const [type, b64] = fields;
  if (!(type in KEY_TYPES))
    return `key type must be one of ${Object.keys(KEY_TYPES).join(", ")} (as in the host's /etc/ssh/ssh_host_*_key.pub)`;
  if (!BASE64.test(b64) || b64.length % 4 !== 0) return "the key part (second field) is not valid base64";
  const blob = Buffer.from(b64, "base64");
  if (blobKeyType(blob) !== type) return `the key data does not hold a ${type} key`;
  return { kind: "key", type, blob, fingerprint: fingerprintOf(blob), algorithms: KEY_TYPES[type] };
}

/** The fingerprint a pin expects. */
export function expectedFingerprint(pin: HostKeyPin): string {
  return pin.fingerprint;
}

/** Whether the presented key blob satisfies the pin. */
export function pinMatches(pin: HostKeyPin, blob: Buffer): boolean {
  if (pin.kind === "key") return blob.equals(pin.blob);
  return fingerprintOf(blob) === pin.fingerprint;
}
