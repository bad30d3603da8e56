// What a Pulumi program loads when it imports the SDK. The SSH transport and the XML parser belong to the plugin
// (which loads them lazily) or to the one function that needs them: a program that only declares resources
// pays for neither.
import { expect } from "chai";
import { execFileSync } from "child_process";
import * as path from "path";

describe("the SDK in a program", () => {
  it("loads neither the SSH transport nor the XML parser", () => {
    const sdk = path.resolve(__dirname, "../../../sdk");
    const out = execFileSync(process.execPath, [
      "-e",
      `require(${JSON.stringify(sdk)}); console.log(JSON.stringify(Object.keys(require.cache)))`,
    ]).toString();
    const files: string[] = JSON.parse(out);
    expect(files.some((f) => f.includes(`${path.sep}sdk${path.sep}virtualNetwork.js`))).to.equal(true);
    const heavy = files.filter((f) =>
      [`${path.sep}ssh2${path.sep}`, "fast-xml-parser", `${path.sep}provider${path.sep}host${path.sep}`].some(
        (p) => f.includes(p),
      ),
    );
    expect(heavy).to.deep.equal([]);
  });
});
