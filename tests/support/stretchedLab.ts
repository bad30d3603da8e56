// The stack config of examples/stretched-lab for lab hosts: the e2e test and the bench deploy it.
import { LabHost } from "../lab/lab";

/** The network spans `hosts` (the first one is the network's); the SSH key is a secret. */
export function stretchedLabConfig(hosts: LabHost[], privateKey: string, cidr?: string) {
  return {
    "stretched:hosts": JSON.stringify(
      hosts.map((h) => ({
        name: h.name,
        address: h.address,
        hostKey: h.hostKey,
        uplinkAddress: h.uplinkAddress,
      })),
    ),
    "stretched:privateKey": { secret: privateKey },
    ...(cidr ? { "stretched:cidr": cidr } : {}),
  };
}
