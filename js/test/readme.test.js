// README.md's fit / predict example, run as written: extracted from the README into a folder where "onnxtrain-js"
// is this package and "bundle/" the test bundle.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const JS = fileURLToPath(new URL("../", import.meta.url));

/** The first ```js block after the heading that starts with `heading`. */
async function example(heading) {
  const readme = await readFile(join(JS, "README.md"), "utf8");
  const start = readme.indexOf(`\n## ${heading}`);
  assert.ok(start >= 0, `README.md has no section ${heading}`);
  const block = /```js\n([\s\S]*?)```/.exec(readme.slice(start));
  assert.ok(block, `README.md's section ${heading} has no js example`);
  return block[1];
}

test("the README's fit and predict example runs as written", async () => {
  const folder = await mkdtemp(join(tmpdir(), "onnxtrain-js-readme-"));
  try {
    await mkdir(join(folder, "node_modules"));
    await symlink(JS, join(folder, "node_modules", "onnxtrain-js"), "dir");
    await symlink(join(JS, "node_modules", "onnxruntime-node"), join(folder, "node_modules", "onnxruntime-node"), "dir");
    await symlink(join(JS, "test", "fixtures", "bundle"), join(folder, "bundle"), "dir");
    await writeFile(join(folder, "example.mjs"), await example("Training loop and predictions"));
    const { stdout } = await promisify(execFile)(process.execPath, ["example.mjs"], { cwd: folder, timeout: 60_000 });
    const lines = stdout.trim().split("\n");
    assert.match(lines[0], /^epoch 0: loss \d+\.\d{4}, val_accuracy 0?\.?\d+/);
    assert.match(lines[2], /^epoch 2: /);
    assert.match(lines[3], /^\[ \d+\.\d+, \d+\.\d+, \d+\.\d+ \]$/); // val_loss: one per epoch
    assert.match(lines.slice(4).join("\n"), /^Int32Array\(8\) \[[\s\d,]+\] Float32Array\(3\) \[[\s\d.,e-]+\]$/);
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
});
