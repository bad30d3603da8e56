// What the resources share about the plain property objects the SDK's dynamic providers pass.

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
