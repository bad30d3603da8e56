// The `network` property of DhcpRange and StaticRoute: copied by the SDK from a VirtualNetwork's outputs, but
// it arrives like any input and reaches the host (file paths, ip), so it is validated like one.
import { MAX_IFNAME } from "../naming";
import {
  checkSafeName,
  isUnknown,
  parseStrictCidr,
  parseStrictIp,
  Problems,
  PropertyError,
} from "../model/validation";

export function checkNetworkRef(ref: unknown, required: boolean): PropertyError[] {
  const problems = new Problems();
  if (ref === undefined || ref === null) {
    if (required) problems.add("network", "is required: the VirtualNetwork this belongs to");
    return problems.errors;
  }
  if (isUnknown(ref)) return [];
  if (typeof ref !== "object" || Array.isArray(ref)) {
    problems.add("network", "must be a VirtualNetwork");
    return problems.errors;
  }
  const n = ref as Record<string, unknown>;
  const known = (v: unknown) => v !== undefined && !isUnknown(v);
  if (known(n.name)) {
    if (typeof n.name !== "string") problems.add("network.name", "must be a string");
    else checkSafeName(n.name, "network.name", problems, 64);
  } else if (n.name === undefined) problems.add("network.name", "is required");
  if (known(n.bridgeName)) {
    if (typeof n.bridgeName !== "string") problems.add("network.bridgeName", "must be a string");
    else checkSafeName(n.bridgeName, "network.bridgeName", problems, MAX_IFNAME);
  }
  for (const k of ["cidr", "ipv6Cidr"])
    if (known(n[k]) && !parseStrictCidr(n[k])) problems.add(`network.${k}`, `"${n[k]}" is not a CIDR`);
  for (const k of ["gatewayIp", "ipv6Gateway"])
    if (known(n[k]) && !parseStrictIp(n[k])) problems.add(`network.${k}`, `"${n[k]}" is not an IP address`);
  return problems.errors;
}
