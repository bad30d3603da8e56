// firewalld's command line, for the one thing virtnet asks of it: the bridge's zone (runtime configuration,
// like libvirt: a firewalld reload drops it, refresh reports that, and the next `up` puts it back).

/** `firewall-cmd --zone=<zone> --add-interface=<bridge>` and its siblings. */
export function firewalldZoneCommand(
  op: "add" | "change" | "remove",
  zone: string,
  bridge: string,
): string[] {
  return ["firewall-cmd", `--zone=${zone}`, `--${op}-interface=${bridge}`];
}
