import * as pulumi from "@pulumi/pulumi";
import { lazyProvider } from "./lazyProvider";
import { splitConnection } from "../provider/resources/credentials";
import { ConnectionInput } from "./connection";
import { Inputs, inputProps } from "./inputs";
import { HOST_BRIDGE_INPUT_KEYS } from "../provider/model/inputs";
import type { HostBridgeArgs as HostBridgeInputs } from "../provider/model/inputs";

export type HostBridgeArgs = Inputs<HostBridgeInputs> & { connection?: pulumi.Input<ConnectionInput> };

const hostBridgeProvider = lazyProvider("pulumi-virtnet/dist/provider/resources/hostBridge.js");

/**
 * A bridge that takes over a host's uplink: the uplink is enslaved and its addresses and routes move to the
 * bridge (which takes its MAC) in one step, detached from the SSH session; the host rolls the change back by
 * itself unless virtnet confirms it over a new SSH connection within confirmTimeout. Delete puts it back.
 */
export class HostBridge extends pulumi.dynamic.Resource {
  declare readonly bridgeName: pulumi.Output<string>;
  declare readonly uplink: pulumi.Output<string>;
  declare readonly macAddress: pulumi.Output<string>;
  /** The addresses moved from the uplink to the bridge ("address/prefix"). */
  declare readonly addresses: pulumi.Output<string[]>;
  /** The routes moved from the uplink to the bridge. */
  declare readonly routes: pulumi.Output<string[]>;
  declare readonly drift: pulumi.Output<string[]>;

  constructor(name: string, args: HostBridgeArgs, opts?: pulumi.CustomResourceOptions) {
    const split = pulumi
      .output(args.connection ?? {})
      .apply((c) => splitConnection(c as Record<string, any>));
    const props: Record<string, any> = {
      ...inputProps(HOST_BRIDGE_INPUT_KEYS, args),
      name: args.name ?? name,
      connection: pulumi.unsecret(split.apply((s) => s.connection)),
      __credentials: pulumi.secret(split.apply((s) => s.credentials ?? {})),
      bridgeName: undefined,
      macAddress: undefined,
      addresses: undefined,
      routes: undefined,
      confirmedAfterMs: undefined,
      drift: undefined,
      host: undefined,
    };
    super(
      hostBridgeProvider,
      name,
      props,
      { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "__credentials"] },
      "virtnet",
      "HostBridge",
    );
  }
}
