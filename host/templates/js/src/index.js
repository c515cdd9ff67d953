// {{name}}: a Sundial action plugin in JavaScript.
//
// Build it with `sundial plugin build`, try it with
// `sundial plugin run build/{{name}}.wasm --params '{"name": "Ada"}'`.
// The action may be async: `await fetch(...)` works (through wasi:http, to granted hosts).
import { defineAction, InvalidParams, log } from "sundial-plugin";

export const run = defineAction((params, ctx) => {
  const name = params.name ?? "world";
  if (typeof name !== "string" || name === "") {
    throw new InvalidParams("params.name must be a non-empty string");
  }
  log.info(`greeting ${name} (run ${ctx.runId}, attempt ${ctx.attempt})`);
  return { greeting: `hello, ${name}` };
});
