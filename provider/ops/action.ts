// One step of a plan, as the ops vocabulary (ops.ts) makes it.

/**
 * What a step touches, declared by the op that makes it (ops.ts), never by a planner. The round
 * (orchestration/round.ts) and its script (script.ts) schedule the step from these alone.
 */
export interface Touches {
  /**
   * Host-wide state that other networks' plans read (virtnet's top directories, forwarding, the boot restore
   * entry, shared firewall chains, firewalld): a plan with such a step comes first in its round and runs in
   * order, as if alone; others join it only as round.ts allows.
   */
  shared?: boolean;
  /**
   * Host-wide state that only the last network takes away (directories, forwarding, the nft table, the restore
   * entry): such a delete may close a round of deletes, these steps at the round's end.
   */
  hostTeardown?: boolean;
  /**
   * The nft transaction the step applies: a round of several plans applies theirs as one, at its end. Only
   * for steps that no later step of the same plan depends on.
   */
  nft?: string;
  /**
   * A link the step makes from nothing with these `ip -batch` lines, which need nothing else of the host: a
   * round of several plans makes all of its new links in one `ip -batch` at its start.
   */
  createsLink?: { link: string; lines: string[] };
  /** The directory the step makes: next to each other, such steps share one mkdir. */
  makesDir?: string;
  /** The file the step removes: next to each other, such steps share one rm. */
  removes?: string;
  /**
   * Directories a delete removes whole, with no undo: a round of several plans removes all of them in one
   * `rm -rf` once its segments' own steps are done (before the steps at its end: the host teardown removes
   * their parents).
   */
  removesTrees?: string[];
  /** A bridge the step deletes: a round deletes its bridges together, from its start, while the rest runs. */
  deletesBridge?: string;
  /** The step waits for the round's bridge deletion, so it runs at the round's end. */
  atRoundEnd?: boolean;
  /**
   * A start that takes a while of its own (dnsmasq): a round of several plans runs it in the background and
   * learns at its end whether it worked. Only for steps that no later step of the same plan depends on.
   */
  background?: boolean;
}

export interface Action extends Touches {
  name: string;
  /** Shell text; every value in it is quoted. */
  run: string;
  undo?: string;
}
