// Runs the built component with `sundial plugin run` (the real sandbox).
// Build first (`sundial plugin build`), then `npm test`. The `sundial` binary is taken
// from $SUNDIAL, else from PATH.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const wasm = fileURLToPath(new URL("../build/{{name}}.wasm", import.meta.url));
const sundial = process.env.SUNDIAL ?? "sundial";
const run = (params) =>
  spawnSync(sundial, ["plugin", "run", wasm, "--params", JSON.stringify(params), "--memory", "128MiB"], {
    encoding: "utf8",
  });

test("greets by name", () => {
  const out = run({ name: "Ada" });
  assert.equal(out.status, 0, out.stderr);
  assert.deepEqual(JSON.parse(out.stdout), { greeting: "hello, Ada" });
  assert.match(out.stderr, /greeting Ada/);
});

test("refuses a name that is not a string", () => {
  const out = run({ name: 7 });
  assert.equal(out.status, 1);
  assert.match(out.stderr, /params\.name must be a non-empty string/);
});
