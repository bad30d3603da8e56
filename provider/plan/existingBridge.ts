// A network of mode "bridge": a bridge the host already has (a HostBridge's, or the host's own). virtnet puts
// nothing on it: the plan checks it is there and records the network, so Ports can join and a refresh can
// tell when the bridge is gone. Delete never touches the bridge.
import { NetworkSpec } from "../model/network";
import { NetworkPaths } from "../naming";
import { ObservedNetwork } from "../observe/observed";
import { Action } from "../ops/action";
import * as ops from "../ops/ops";
import { dirActions } from "./hostState";
import { Plan, refused } from "./plan";
import { networkRestoreActions, restoreGlobalActions } from "./restore";

const VIRTNET_NETWORK_ALIAS = "virtnet:";

/** Why the named bridge cannot carry the network, found before anything changes. */
export function existingBridgeErrors(spec: NetworkSpec, observed: ObservedNetwork): string[] {
  const name = spec.bridge.name;
  const b = observed.bridge;
  if (!b)
    return [
      `bridge ${name} does not exist on this host: mode "bridge" uses a bridge the host already has ` +
        `(make it with a HostBridge, or in the host's network configuration)`,
    ];
  if (b.kind !== "bridge") return [`interface ${name} is not a bridge (it is a ${b.kind || "device"})`];
  if (b.alias?.startsWith(VIRTNET_NETWORK_ALIAS))
    return [
      `bridge ${name} is virtnet network "${b.alias.slice(VIRTNET_NETWORK_ALIAS.length)}"'s own bridge: ` +
        `give mode "bridge" a bridge of the host`,
    ];
  return observed.networks
    .filter((n) => n.name !== spec.name && n.bridge === name)
    .map((n) => `bridge ${name} is already used by virtnet network "${n.name}"`);
}

export function planExistingBridge(
  spec: NetworkSpec,
  observed: ObservedNetwork,
  paths: NetworkPaths,
  record: string,
): Plan {
  const errors = existingBridgeErrors(spec, observed);
  if (errors.length) return refused(errors);
  const prev = observed.networks.find((n) => n.name === spec.name);
  const prevText = prev ? JSON.stringify(prev) + "\n" : undefined;
  const restore = { backend: "nftables" as const, dockerUser: [] };
  const actions: Action[] = [
    ...dirActions(observed, paths),
    ...networkRestoreActions(spec, [], observed, paths, restore),
    ...restoreGlobalActions(observed, true),
  ];
  if (record !== prevText) actions.push(ops.writeFile(paths.appliedSpec, record, prevText));
  return { errors: [], warnings: [], actions };
}
