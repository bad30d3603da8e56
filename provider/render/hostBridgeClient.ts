// The script that carries an uplink's DHCP client (ISC dhclient) along with its addressing, around one of a
// HostBridge's batches: it stops the client on the interface the addressing leaves with SIGTERM (dhclient then
// exits WITHOUT a DHCPRELEASE: the lease stays the host's), runs the batch, gives each moved address the
// lifetime it had a moment before (the client's current lease, not the one saved at create), and starts the
// client on the interface the addressing reaches. Same MAC, same DUID and lease file: the server hands out the
// same lease. $1 is the batch, $2 "-force" or nothing.
import { quote } from "shell-quote";
import { IpAddrInfo } from "./hostBridge";

export interface ClientCarry {
  /** The interface the addressing leaves, and the one it reaches. */
  from: string;
  to: string;
  /** The addresses the batch moves (lifetimes are carried for those that have one). */
  addresses: IpAddrInfo[];
  /** The command lines to start on `to`. */
  start: string[][];
}

const FOREVER = 4294967295;

/** The client's program name, as /proc/<pid>/comm shows it. */
const CLIENT_PROGRAM = "dhclient";

export function renderClientCarry(c: ClientCarry): string {
  const q = (s: string) => quote([s]);
  const timed = c.addresses.filter((a) => a.valid_life_time !== undefined && a.valid_life_time !== FOREVER);
  const lines = [
    "#!/bin/sh",
    `# virtnet: carries the DHCP client from ${c.from} to ${c.to} around the batch $1. Generated: virtnet rewrites this file.`,
    "batch=$1; force=$2",
    // Processes of the client whose command line names interface $1.
    `clients_on() { for p in /proc/[0-9]*; do read -r n < "$p/comm" 2>/dev/null && [ "$n" = ${CLIENT_PROGRAM} ] && tr '\\0' '\\n' < "$p/cmdline" 2>/dev/null | grep -qxF -- "$1" && basename "$p"; done; }`,
    // An exited process may linger as a zombie until its parent reaps it.
    `alive() { for p in "$@"; do [ -d "/proc/$p" ] && [ "$(sed 's/.*) //; s/ .*//' "/proc/$p/stat" 2>/dev/null)" != Z ] && return 0; done; return 1; }`,
    // "<valid> <preferred>" seconds left of address $2 on interface $1; nothing when it has no lifetime.
    `lifetimes() { ip -o addr show dev "$1" 2>/dev/null | awk -v a="$2" '$4 == a { for (i = 4; i < NF; i++) { if ($i == "valid_lft") v = $(i + 1); if ($i == "preferred_lft") p = $(i + 1) } } END { if (v ~ /sec$/ && p ~ /sec$/) print v + 0, p + 0 }'; }`,
    ...timed.map((a, i) => `lft${i}=$(lifetimes ${q(c.from)} ${q(`${a.local}/${a.prefixlen}`)})`),
    `pids=$(clients_on ${q(c.from)})`,
    'if [ -n "$pids" ]; then',
    "  kill -TERM $pids 2>/dev/null",
    "  i=0; while [ $i -lt 50 ] && alive $pids; do sleep 0.1; i=$((i + 1)); done",
    // SIGKILL sends no DHCPRELEASE either.
    "  ! alive $pids || kill -KILL $pids 2>/dev/null",
    "fi",
    // Without -force a failed batch stops here: the runner's undo brings the client back where it was.
    'ip $force -batch "$batch"; rc=$?',
    '[ -n "$force" ] || [ $rc -eq 0 ] || exit $rc',
    ...timed.map((a, i) => {
      const words = ["ip", "addr", "change", `${a.local}/${a.prefixlen}`];
      if (a.broadcast) words.push("broadcast", a.broadcast);
      words.push("dev", c.to);
      return `[ -z "$lft${i}" ] || { set -- $lft${i}; ${quote(words)} valid_lft "$1" preferred_lft "$2"; }`;
    }),
    // In a session of its own and without virtnet's lock (fd 9): it outlives the runner.
    ...c.start.map((argv) => `( exec 9<&-; setsid ${quote(argv)} </dev/null >/dev/null 2>&1 & )`),
    "exit 0",
    "",
  ];
  return lines.join("\n");
}
