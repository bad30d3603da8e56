// What a planner returns: the steps that make a host match, or why it cannot.
import { Action } from "../ops/action";

export interface Plan {
  /** Problems only the host reveals, found before anything changes. */
  errors: string[];
  warnings: string[];
  actions: Action[];
}

export function nothingToDo(warnings: string[] = []): Plan {
  return { errors: [], warnings, actions: [] };
}

export function refused(errors: string[], warnings: string[] = []): Plan {
  return { errors, warnings, actions: [] };
}
