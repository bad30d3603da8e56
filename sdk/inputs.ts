// The provider's declaration of each resource's inputs (provider/model/inputs.ts), as Pulumi inputs.
import * as pulumi from "@pulumi/pulumi";

/** `T` with every value, at every depth, a pulumi.Input. */
export type Inputs<T> = { [K in keyof T]: DeepInput<NonNullable<T[K]>> };

type DeepInput<T> = [T] extends [string] | [number] | [boolean]
  ? pulumi.Input<T>
  : pulumi.Input<Unwrapped<T>>;
type Unwrapped<T> = T extends readonly (infer U)[] ? DeepInput<U>[] : T extends object ? Inputs<T> : T;

/** The props of a dynamic resource: its input keys, each with the argument's value (or undefined). */
export function inputProps<T>(keys: readonly (keyof T & string)[], args: T | undefined): Record<string, any> {
  const props: Record<string, any> = {};
  for (const k of keys) props[k] = args?.[k];
  return props;
}
