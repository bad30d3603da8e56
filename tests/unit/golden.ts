// Golden files: compare rendered text with tests/golden/<name>; UPDATE_GOLDEN=1 rewrites them.
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";

export const GOLDEN_DIR = path.resolve(__dirname, "../../../tests/golden");

export function expectGolden(name: string, actual: string): void {
  const file = path.join(GOLDEN_DIR, name);
  if (process.env.UPDATE_GOLDEN === "1") {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, actual);
    return;
  }
  if (!fs.existsSync(file))
    throw new Error(`golden file ${name} is missing: run with UPDATE_GOLDEN=1 and review it`);
  expect(actual, `golden file ${name}`).to.equal(fs.readFileSync(file, "utf8"));
}
