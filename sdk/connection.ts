import * as pulumi from "@pulumi/pulumi";

/** How virtnet reaches a host over SSH. Secrets (privateKey, privateKeyPassphrase, password) are kept secret. */
export interface ConnectionInput {
  host: pulumi.Input<string>;
  port?: pulumi.Input<number>;
  user?: pulumi.Input<string>;
  privateKey?: pulumi.Input<string>;
  privateKeyPassphrase?: pulumi.Input<string>;
  password?: pulumi.Input<string>;
  agentSocket?: pulumi.Input<string>;
  /** OpenSSH public-key line or "SHA256:..." fingerprint of the host key. Required unless insecureIgnoreHostKey. */
  hostKey?: pulumi.Input<string>;
  insecureIgnoreHostKey?: pulumi.Input<boolean>;
  sudo?: pulumi.Input<boolean>;
  proxy?: pulumi.Input<ConnectionInput>;
  connectTimeoutMs?: pulumi.Input<number>;
  retries?: pulumi.Input<number>;
  /** The longest one operation on the host may take (queue, probe, script); default 300000 (5 min). */
  operationTimeoutMs?: pulumi.Input<number>;
}
