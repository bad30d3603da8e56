import { constants } from "os";

/** The shell's convention for a process killed by a signal: 128 + its number (255 when unknown). */
export function signalExitCode(signal: string | undefined): number {
  if (!signal) return 255;
  const name = (signal.startsWith("SIG") ? signal : `SIG${signal}`) as keyof typeof constants.signals;
  const n = constants.signals[name];
  return typeof n === "number" ? 128 + n : 255;
}
