import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildCommand, LocalHost } from "../../../provider/host";

// Prints every positional argument followed by a NUL, so the bytes can be compared exactly.
const ECHO_ARGS = `for a in "$@"; do printf '%s\\0' "$a"; done`;

describe("host/quoting: arguments reach the script byte for byte", () => {
  let dir: string;
  let marker: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "vn-quote-"));
    marker = path.join(dir, "pwned");
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const nasty = () => [
    `$(touch ${marker})`,
    `\`touch ${marker}\``,
    `; touch ${marker}`,
    `'; touch ${marker}; '`,
    `"; touch ${marker}; "`,
    `it's "quoted" !bang 'and' \\back\\slash`,
    `line1\nline2\n`,
    "\n",
    "",
    " leading and trailing spaces ",
    "tab\there",
    "-n",
    "--",
    "*",
    "~root",
    "$HOME ${PATH} $1 $@ $0",
    "a|b&c>d<e(f)g{h}i[j]k#l",
    "!$ !! !-1",
    "\\",
    "'",
    '"',
    "''\"\"",
    "héllo wörld ✓ 🎉",
    "\u0001\u0002\u001b[31mred\r",
    `${"x".repeat(5000)}'$(touch ${marker})'`,
  ];

  for (const shell of ["/bin/sh", "/bin/bash"]) {
    it(`passes nasty arguments unchanged through ${shell} -c and runs none of them`, async () => {
      const host = new LocalHost({ loginShell: shell });
      const args = nasty();
      const r = await host.run(ECHO_ARGS, { args });
      expect(r.code).to.equal(0);
      expect(r.stderr).to.equal("");
      expect(r.stdout).to.equal(args.map((a) => `${a}\0`).join(""));
      for (const [i, a] of args.entries()) {
        const one = await host.run(`printf '%s' "$1"`, { args: [a] });
        expect(one.stdout, `arg ${i}`).to.equal(a);
      }
      expect(fs.existsSync(marker), "an argument was executed").to.equal(false);
    });
  }

  it("passes a script with quotes and specials unchanged, with $0 = virtnet", async () => {
    const host = new LocalHost();
    const r = await host.run(
      `printf '%s|' "$0" "$#" 'single' "double \\"q\\"" $((1+2)) "$(echo sub)"; echo '!'`,
      {
        args: ["a", "b"],
      },
    );
    expect(r.stdout).to.equal('virtnet|2|single|double "q"|3|sub|!\n');
  });

  it("builds the command only from quoted pieces, with sudo -n -- in front when asked", () => {
    expect(buildCommand("echo $1", ["a b"])).to.equal("/bin/sh -c 'echo $1' virtnet 'a b'");
    expect(buildCommand("id -u", [], true)).to.equal("sudo -n -- /bin/sh -c 'id -u' virtnet");
    expect(buildCommand("true", ["$(x)"])).to.equal("/bin/sh -c true virtnet \\$\\(x\\)");
  });

  it("refuses NUL bytes, which no command line can carry", () => {
    expect(() => buildCommand("echo", ["a\0b"])).to.throw(/args\[0\].*NUL/);
    expect(() => buildCommand("echo\0")).to.throw(/script.*NUL/);
  });

  it("streams stdin to the command unchanged (binary too) and ends it", async () => {
    const host = new LocalHost();
    const data = Buffer.from([0, 1, 2, 255, 254, 10, 13, 0x27, 0x22]);
    const r = await host.run("od -An -tx1 -v | tr -d ' \\n'", { stdin: data });
    expect(r.stdout).to.equal(data.toString("hex"));
    const noStdin = await host.run("cat; echo done");
    expect(noStdin.stdout).to.equal("done\n");
  });
});
