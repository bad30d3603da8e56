// Shared pieces of input validation: property-named errors, Pulumi's preview unknowns, syntax rules.
import * as ipaddr from "ipaddr.js";

export interface PropertyError {
  property: string;
  reason: string;
}

/** The value Pulumi sends for an input that is not known yet (during preview). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export function isUnknown(value: unknown): boolean {
  return value === UNKNOWN;
}

/** True when the value, or anything inside it, is still unknown. */
export function containsUnknown(value: unknown): boolean {
  if (isUnknown(value)) return true;
  if (Array.isArray(value)) return value.some(containsUnknown);
  if (value && typeof value === "object") return Object.values(value).some(containsUnknown);
  return false;
}

export class ValidationError extends Error {
  constructor(readonly errors: PropertyError[]) {
    super(errors.map((e) => `${e.property}: ${e.reason}`).join("; "));
    this.name = "ValidationError";
  }
}

/** Collects errors under property paths such as "ipv4.gateway". */
export class Problems {
  readonly errors: PropertyError[] = [];
  add(property: string, reason: string): void {
    this.errors.push({ property, reason });
  }
  get ok(): boolean {
    return this.errors.length === 0;
  }
  throwIfAny(): void {
    if (!this.ok) throw new ValidationError(this.errors);
  }
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** Rejects control characters (newline, NUL, ...) in every string anywhere in the input. */
export function checkNoControlCharacters(value: unknown, path: string, problems: Problems): void {
  if (typeof value === "string") {
    if (CONTROL.test(value)) problems.add(path, "must not contain control characters such as newline or NUL");
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => checkNoControlCharacters(v, `${path}[${i}]`, problems));
  } else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value))
      checkNoControlCharacters(v, path ? `${path}.${k}` : k, problems);
  }
}

const NAME = /^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$/;

/** Names that become file names and interface names on a host. */
export function checkSafeName(value: string, path: string, problems: Problems, maxLength: number): void {
  if (value === "." || value === "..") problems.add(path, `"${value}" is not allowed`);
  else if (!NAME.test(value))
    problems.add(
      path,
      "may contain only letters, digits, '_', '.' and '-', and must not start with '.' or '-'",
    );
  else if (value.length > maxLength) problems.add(path, `must be at most ${maxLength} characters`);
}

const DNS_LABEL = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;

/** RFC 1123 host or domain name: dot-separated labels of letters, digits and inner hyphens. */
export function isDnsName(value: string): boolean {
  const name = value.endsWith(".") ? value.slice(0, -1) : value;
  if (name.length === 0 || name.length > 253) return false;
  return name.split(".").every((label) => DNS_LABEL.test(label));
}

const MAC = /^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/;

export function checkUnicastMac(value: string, path: string, problems: Problems): void {
  if (!MAC.test(value)) {
    problems.add(path, "must be a MAC address like 52:54:00:12:34:56");
    return;
  }
  if (parseInt(value.slice(0, 2), 16) & 1) problems.add(path, "must be a unicast MAC (first octet even)");
  else if (/^(00:){5}00$/.test(value)) problems.add(path, "must not be all zeros");
}

export function checkInteger(
  value: unknown,
  path: string,
  problems: Problems,
  min: number,
  max: number,
): boolean {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    problems.add(path, `must be an integer from ${min} to ${max}`);
    return false;
  }
  return true;
}

/**
 * An IPv4 address in four-part decimal or an IPv6 address; undefined otherwise. inet_aton spellings such as
 * "010.0.0.1" (octal) or "10.1" are refused: they read as one address and mean another.
 */
export function parseStrictIp(value: unknown): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  if (typeof value !== "string" || value.includes("%")) return undefined;
  if (ipaddr.IPv4.isValidFourPartDecimal(value)) return ipaddr.IPv4.parse(value);
  if (!value.includes(".") && ipaddr.IPv6.isValid(value)) return ipaddr.IPv6.parse(value);
  if (value.includes(":") && ipaddr.IPv6.isValid(value)) return ipaddr.IPv6.parse(value); // ::ffff:a.b.c.d
  return undefined;
}

/** "address/prefix" with a strict address and a prefix valid for its family; undefined otherwise. */
export function parseStrictCidr(value: unknown): [ipaddr.IPv4 | ipaddr.IPv6, number] | undefined {
  if (typeof value !== "string") return undefined;
  const m = /^([^/]+)\/(\d{1,3})$/.exec(value);
  const addr = m ? parseStrictIp(m[1]) : undefined;
  if (!m || !addr) return undefined;
  const len = Number(m[2]);
  return len <= (addr.kind() === "ipv4" ? 32 : 128) ? [addr, len] : undefined;
}
