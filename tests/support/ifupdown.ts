/** The arguments Debian's ifupdown gives dhclient for "iface eth0 inet dhcp" (unit and lab tests of HostBridge). */
export const IFUPDOWN_DHCLIENT = [
  "-4",
  "-v",
  "-i",
  "-pf",
  "/run/dhclient.eth0.pid",
  "-lf",
  "/var/lib/dhcp/dhclient.eth0.leases",
  "-I",
  "-df",
  "/var/lib/dhcp/dhclient6.eth0.leases",
  "eth0",
];
