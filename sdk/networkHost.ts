import * as pulumi from "@pulumi/pulumi";
import { VirtualNetwork } from "./virtualNetwork";

/** The network's host connection and names, as a read on its host (getLeases, getFdb) needs them. */
export interface NetworkOnHost {
  connection: Record<string, any>;
  credentials: Record<string, any> | undefined;
  name: string;
  bridgeName: string;
}

/**
 * Runs `read` with the network's connection once its outputs are known. This runs in the program, not in the
 * provider plugin: the stack config's defaults (`virtnet:host`, ...) are read here and handed to the provider.
 * In a preview where the network's outputs are not known yet (it is still to be made), `whenUnknown`; when they
 * failed (the network's create or read failed), that error.
 */
export function readOnNetworkHost<T>(
  network: VirtualNetwork,
  read: (n: NetworkOnHost) => Promise<T>,
  whenUnknown: T,
): Promise<T> {
  const net = network as any;
  const cfg = new pulumi.Config("virtnet");
  const defaults = pulumi.all([
    cfg.get("host"),
    cfg.get("user"),
    cfg.getSecret("privateKey"),
    cfg.get("hostKey"),
  ]);
  return new Promise((resolve, reject) => {
    const inputs = pulumi.all([net.connection, net.__credentials, net.name, net.bridgeName, defaults]);
    // apply() never calls back for an unknown or a failed value: without this the promise would never settle.
    (inputs as unknown as { isKnown: Promise<boolean> }).isKnown.then(
      (known) => known || resolve(whenUnknown),
      reject,
    );
    inputs.apply(([connection, credentials, name, bridgeName, d]) => {
      require("pulumi-virtnet/dist/provider/resources/connection.js").configureDefaults({
        host: d[0],
        user: d[1],
        privateKey: d[2],
        hostKey: d[3],
      });
      return read({ connection, credentials, name, bridgeName }).then(resolve, reject);
    });
  });
}

/**
 * The options of a resource that belongs to a network (DhcpRange, Port) or to an extension of it (Port): it
 * depends on that resource, and its copy of the host's credentials stays secret.
 */
export function onNetworkOptions(
  network: pulumi.Resource,
  opts: pulumi.CustomResourceOptions | undefined,
): pulumi.CustomResourceOptions {
  return {
    ...opts,
    dependsOn: [network, ...([] as pulumi.Resource[]).concat((opts?.dependsOn as pulumi.Resource[]) ?? [])],
    additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "__credentials"],
  };
}
