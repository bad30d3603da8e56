import * as pulumi from "@pulumi/pulumi";

/**
 * The stack this program runs as: "<organization>/<project>/<stack>", or "<project>/<stack>" where the runtime
 * has no organization. Passed as the hidden input `__stack` and recorded on the host with each resource, so a
 * network's delete can tell another stack's ranges, routes, Ports and extensions from its own.
 */
export function declaringStack(): string {
  let organization: string | undefined;
  try {
    organization = pulumi.getOrganization();
  } catch {
    organization = undefined; // an older engine, or a test runtime without one
  }
  return [organization, pulumi.getProject(), pulumi.getStack()].filter((p) => !!p).join("/");
}
