// A network's own dnsmasq options (dnsmasqOptions): lines appended to the dnsmasq configuration virtnet writes,
// at the user's own responsibility, except those that would take over what virtnet owns.
import { checkNoControlCharacters, Problems } from "./validation";

/**
 * Options virtnet sets itself or that would move dnsmasq off what virtnet watches and controls: its files
 * (configuration, pid, leases, hosts), the interfaces and addresses it listens on, the user it runs as,
 * running in the foreground, a script run as root on every lease.
 */
const OWNED = new Set([
  "conf-file",
  "conf-dir",
  "conf-script",
  "servers-file",
  "pid-file",
  "dhcp-leasefile",
  "leasefile-ro",
  "dhcp-script",
  "dhcp-luascript",
  "script-arp",
  "dhcp-scriptuser",
  "dhcp-hostsfile",
  "dhcp-hostsdir",
  "interface",
  "except-interface",
  "no-dhcp-interface",
  "auth-server",
  "listen-address",
  "bind-interfaces",
  "bind-dynamic",
  "user",
  "group",
  "keep-in-foreground",
  "no-daemon",
  "port",
]);

/** The option's name: the text before "=", without leading dashes. */
export function dnsmasqOptionName(line: string): string {
  return line.replace(/^-+/, "").split("=")[0].trim();
}

export function checkDnsmasqOptions(raw: unknown, problems: Problems): string[] | undefined {
  if (raw === undefined) return undefined;
  if (!Array.isArray(raw)) {
    problems.add("dnsmasqOptions", 'must be a list of dnsmasq options, one per entry, e.g. ["log-queries"]');
    return undefined;
  }
  const out: string[] = [];
  raw.forEach((line, i) => {
    const path = `dnsmasqOptions[${i}]`;
    if (typeof line !== "string" || line.trim() === "")
      return problems.add(path, "must be one dnsmasq option (a non-empty string)");
    const before = problems.errors.length;
    checkNoControlCharacters(line, path, problems); // one option on one line
    if (problems.errors.length !== before) return;
    const name = dnsmasqOptionName(line);
    if (!/^[a-z0-9-]+$/.test(name))
      return problems.add(path, `"${line}" is not a dnsmasq option (name=value)`);
    if (OWNED.has(name))
      return problems.add(
        path,
        `${name} is set by virtnet (its files, interfaces, addresses, user and scripts): not allowed here`,
      );
    out.push(line.replace(/^-+/, "").trim());
  });
  return out.length ? out : undefined;
}
