// Values in shell text: every one quoted by shell-quote, never spliced.
import { quote } from "shell-quote";

/** One command line: each word quoted as the shell needs it. */
export const sh = (...argv: string[]): string => quote(argv);
