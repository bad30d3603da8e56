// virtnet -> libvirt network XML that `virsh net-define` accepts: the network with its DHCP ranges,
// reservations, DNS records and the static routes that go via it.
import { XMLBuilder } from "fast-xml-parser";
import * as ipaddr from "ipaddr.js";
import { DhcpRangeSpec } from "../model/dhcpRange";
import { modeUsesExistingBridge } from "../model/modes";
import { DEFAULT_NAT_PORTS, NetworkSpec } from "../model/network";
import { dnsRecordOptions } from "../render/dnsmasq";
import { DNSMASQ_NAMESPACE, DNSMASQ_PREFIX } from "./dnsmasqOptions";

/** A route via the network (a StaticRoute's destination CIDR, gateway and metric). */
export interface LibvirtRoute {
  destination: string;
  gateway: string;
  metric?: number;
}

type Element = Record<string, unknown>;

function el(
  name: string,
  attrs: Record<string, string | number | undefined> = {},
  children: Element[] = [],
): Element {
  const defined = Object.entries(attrs).filter(([, v]) => v !== undefined);
  const e: Element = { [name]: children };
  if (defined.length) e[":@"] = Object.fromEntries(defined.map(([k, v]) => [k, String(v)]));
  return e;
}

function textEl(name: string, value: string): Element {
  return { [name]: [{ "#text": value }] };
}

const builder = new XMLBuilder({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: "",
  format: true,
  indentBy: "  ",
  suppressEmptyNode: true,
});

const LEASE = /^(\d+)([smhdw]?)$/;

/** A dnsmasq lease time as libvirt's <lease>: expiry 0 is infinite; days and weeks become hours. */
export function leaseElement(leaseTime: string): Element {
  if (leaseTime === "infinite") return el("lease", { expiry: 0 });
  const m = LEASE.exec(leaseTime);
  if (!m) throw new Error(`lease time "${leaseTime}" is not in dnsmasq form`);
  const n = Number(m[1]);
  switch (m[2]) {
    case "":
    case "s":
      return el("lease", { expiry: n, unit: "seconds" });
    case "m":
      return el("lease", { expiry: n, unit: "minutes" });
    case "h":
      return el("lease", { expiry: n, unit: "hours" });
    case "d":
      return el("lease", { expiry: n * 24, unit: "hours" });
    default:
      return el("lease", { expiry: n * 168, unit: "hours" });
  }
}

function addressOrder(a: string, b: string): number {
  const x = ipaddr.parse(a).toByteArray();
  const y = ipaddr.parse(b).toByteArray();
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function dhcpElement(ranges: DhcpRangeSpec[], bootp?: NetworkSpec["bootp"]): Element[] {
  const boot = bootp ? [el("bootp", { file: bootp.file, server: bootp.server })] : [];
  if (ranges.length === 0) return boot.length ? [el("dhcp", {}, boot)] : [];
  const sorted = [...ranges].sort((a, b) => addressOrder(a.start, b.start));
  const children = sorted
    .filter((r) => !r.static)
    .map((r) => el("range", { start: r.start, end: r.end }, [leaseElement(r.leaseTime)]));
  const seen = new Set<string>();
  for (const r of sorted)
    for (const h of r.hosts) {
      const key = `${h.mac ?? h.duid}/${h.ip}/${h.hostname ?? ""}`;
      if (seen.has(key)) continue;
      seen.add(key);
      // An IPv6 reservation's DUID is libvirt's id.
      children.push(el("host", { mac: h.mac, id: h.duid, name: h.hostname, ip: h.ip }));
    }
  return [el("dhcp", {}, [...children, ...boot])];
}

/**
 * The network as libvirt network XML. `ranges` are the network's DHCP ranges (with their reservations),
 * `routes` the static routes via the network. Isolated networks have no <forward>; DNS forwarders and
 * hosts are left out when DNS is disabled (libvirt refuses them there, and they mean nothing then).
 */
export function toLibvirtXml(
  spec: NetworkSpec,
  ranges: DhcpRangeSpec[] = [],
  routes: LibvirtRoute[] = [],
): string {
  const net: Element[] = [textEl("name", spec.name)];
  // libvirt refuses stp, delay, <mac>, <dns> and <ip> on a bridge it does not own.
  if (modeUsesExistingBridge(spec.mode)) {
    net.push(el("forward", { mode: spec.mode }), el("bridge", { name: spec.bridge.name }));
    return builder.build([el("network", {}, net)]).trim() + "\n";
  }

  if (spec.mode !== "isolated") {
    const forward: Element[] = [];
    if (spec.mode === "nat") {
      const nat: Element[] = [];
      if (spec.nat.addressRange) nat.push(el("address", { ...spec.nat.addressRange }));
      const ports = spec.nat.portRange;
      if (ports.start !== DEFAULT_NAT_PORTS.start || ports.end !== DEFAULT_NAT_PORTS.end)
        nat.push(el("port", { start: ports.start, end: ports.end }));
      const natIpv6 = spec.nat.ipv6 ? "yes" : undefined;
      if (nat.length || natIpv6) forward.push(el("nat", { ipv6: natIpv6 }, nat));
    }
    const dev = spec.mode === "nat" || spec.mode === "route" ? spec.forwardDevice : undefined;
    if (dev) forward.push(el("interface", { dev }));
    net.push(el("forward", { mode: spec.mode, dev }, forward));
  }

  net.push(
    el("bridge", { name: spec.bridge.name, stp: spec.bridge.stp ? "on" : "off", delay: spec.bridge.delay }),
  );
  if (spec.bridge.mtu !== undefined) net.push(el("mtu", { size: spec.bridge.mtu }));
  net.push(el("mac", { address: spec.bridge.macAddress }));
  if (spec.domain)
    net.push(el("domain", { name: spec.domain.name, localOnly: spec.domain.localOnly ? "yes" : "no" }));

  if (!spec.dns.enabled) net.push(el("dns", { enable: "no" }));
  else {
    const dns: Element[] = [
      ...spec.dns.forwarders.map((f) => el("forwarder", { domain: f.domain, addr: f.address })),
      ...spec.dns.hosts.map((h) =>
        el(
          "host",
          { ip: h.ip },
          h.hostnames.map((n) => textEl("hostname", n)),
        ),
      ),
      ...(spec.dns.srv ?? []).map((r) =>
        el("srv", {
          service: r.service,
          protocol: r.protocol,
          domain: r.domain,
          target: r.target,
          port: r.port,
          priority: r.priority,
          weight: r.weight,
        }),
      ),
      ...(spec.dns.txt ?? []).map((t) => el("txt", { name: t.name, value: t.value })),
    ];
    net.push(el("dns", { forwardPlainNames: spec.dns.forwardPlainNames === false ? "no" : "yes" }, dns));
  }

  const v4 = ranges.filter((r) => (r.family ?? 4) === 4);
  const v6 = ranges.filter((r) => r.family === 6);
  if (spec.ipv4)
    net.push(
      el("ip", { address: spec.ipv4.gateway, netmask: spec.ipv4.netmask }, [
        ...(spec.tftp ? [el("tftp", { root: spec.tftp.root })] : []),
        ...dhcpElement(v4, spec.bootp),
      ]),
    );
  const ipv6 = spec.ipv6;
  if (ipv6)
    net.push(el("ip", { family: "ipv6", address: ipv6.gateway, prefix: ipv6.prefixLength }, dhcpElement(v6)));

  for (const r of routes) {
    const [addr, len] = ipaddr.parseCIDR(r.destination);
    net.push(
      el("route", {
        family: addr.kind() === "ipv6" ? "ipv6" : undefined,
        address: addr.toString(),
        prefix: len,
        gateway: r.gateway,
        // libvirt refuses metric 0 and installs routes without one with metric 1: the nearest it has.
        metric: r.metric ? r.metric : undefined,
      }),
    );
  }

  // CNAME and MX records through libvirt's dnsmasq passthrough (dnsmasqOptions.ts), as DNS records: not when
  // DNS is off; then the user's own dnsmasq options, as they are.
  const options = [...(spec.dns.enabled ? dnsRecordOptions(spec.dns) : []), ...(spec.dnsmasqOptions ?? [])];
  if (options.length)
    net.push(
      el(
        `${DNSMASQ_PREFIX}:options`,
        {},
        options.map((value) => el(`${DNSMASQ_PREFIX}:option`, { value })),
      ),
    );
  const namespace = options.length ? { [`xmlns:${DNSMASQ_PREFIX}`]: DNSMASQ_NAMESPACE } : {};
  return builder.build([el("network", namespace, net)]).trim() + "\n";
}
