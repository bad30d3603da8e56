// What the resources share about the plain property objects the SDK's dynamic providers pass.
import { PropertyError, ValidationError } from "../model/validation";

export type Props = Record<string, any>;

/** The given keys of `props`, without the undefined ones. */
export function pick(keys: readonly string[], props: Props): Props {
  const out: Props = {};
  for (const k of keys) if (props[k] !== undefined) out[k] = props[k];
  return out;
}

/** The keys whose values differ between two property sets (undefined and null compare equal). */
export function changedKeys(keys: readonly string[], olds: Props, news: Props): string[] {
  const stable = (v: unknown) => JSON.stringify(v ?? null);
  return keys.filter((k) => stable(olds[k]) !== stable(news[k]));
}

/** check's answer: the inputs as given, with `rendered` made anew from the spec when nothing failed. */
export function checked<S>(
  news: Props,
  failures: PropertyError[],
  spec: S | undefined,
  render: (spec: S) => unknown,
) {
  const inputs: Props = { ...news };
  delete inputs.rendered;
  if (spec && failures.length === 0) inputs.rendered = render(spec);
  return { inputs, failures };
}

/** The spec a validation built, or its errors thrown (create, update and read need a valid spec). */
export function required<S>(result: { spec?: S; errors: PropertyError[] }): S {
  if (!result.spec) throw new ValidationError(result.errors);
  return result.spec;
}

/**
 * The stack that declares a resource, as the SDK passes it (the hidden input `__stack`, "<project>/<stack>" or
 * "<organization>/<project>/<stack>"); recorded on the host with the resource. Never part of a diff.
 */
export function stackOf(props: Props): string | undefined {
  return typeof props.__stack === "string" && props.__stack !== "" ? props.__stack : undefined;
}

/** read's inputs keep the hidden inputs the state has, so a refresh alone changes none of them. */
export function keepHidden(inputs: Props, props: Props, keys: readonly string[]): Props {
  for (const k of keys) if (props[k] !== undefined) inputs[k] = props[k];
  return inputs;
}
