// The JavaScript SDK of Sundial plugins: see index.d.ts for the documented API and
// docs/plugins.md for building. Host calls go through the component's imports
// (`sundial:plugin/host@0.1.0`), which exist only inside a component build.
import * as host from "sundial:plugin/host@0.1.0";

/** Base of the errors an action throws on purpose; `kind` is the contract's variant. */
export class PluginError extends Error {
  get kind() { return "failed"; }
}
/** The parameters are wrong; retrying cannot help. The run fails at once. */
export class InvalidParams extends PluginError {
  get kind() { return "invalid-params"; }
}
/** The action failed; the task's retry policy may still retry it. */
export class Failed extends PluginError {
  get kind() { return "failed"; }
}
/** A transient failure (a timeout, a 503, a lock held): worth retrying. */
export class Retryable extends PluginError {
  get kind() { return "retryable"; }
}
/** The host refused a call: not granted, a limit reached, or invalid input. */
export class HostError extends Error {}

function hostCall(f, ...args) {
  try {
    return f(...args);
  } catch (e) {
    throw new HostError(String(e && e.payload !== undefined ? e.payload : (e && e.message) || e));
  }
}

const write = (level) => (message) => host.log(level, String(message));
/** The run's log. Never fails; lines beyond the log limits are dropped. */
export const log = {
  trace: write("trace"),
  debug: write("debug"),
  info: write("info"),
  warn: write("warn"),
  error: write("error"),
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The plugin's own key-value namespace (needs the `kv` grant). */
export const kv = {
  get(key) {
    const v = hostCall(host.kvGet, key);
    return v === undefined ? undefined : v;
  },
  getString(key) {
    const v = kv.get(key);
    return v === undefined ? undefined : decoder.decode(v);
  },
  getJson(key) {
    const v = kv.getString(key);
    return v === undefined ? undefined : JSON.parse(v);
  },
  set(key, value) {
    hostCall(host.kvSet, key, typeof value === "string" ? encoder.encode(value) : value);
  },
  setJson(key, value) {
    kv.set(key, JSON.stringify(value));
  },
  delete(key) {
    hostCall(host.kvDelete, key);
  },
};

/** The value of secret `name`; undefined when it is not granted or does not exist. */
export function secret(name) {
  return host.secret(name);
}

/** Emit an event of type `kind` (needs the `emit-events` grant). */
export function emitEvent(kind, data = null, subject = undefined) {
  hostCall(host.emitEvent, kind, subject, JSON.stringify(data === undefined ? null : data));
}

function parseEvent(e) {
  if (e === undefined || e === null) return undefined;
  return { id: e.id, kind: e.kind, source: e.source, subject: e.subject, time: e.time, data: JSON.parse(e.data) };
}

function describe(e) {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

// The contract's error variant for a thrown value. ComponentizeJS lowers what an export
// throws as the `err` case of its result, so this is what `run` throws.
function actionError(e) {
  if (e instanceof PluginError) return { tag: e.kind, val: e.message };
  // The engine out of memory: thrown on as it is (not a variant), so the instance traps
  // and the host reports `memory_limit` rather than an ordinary failure.
  if (isOutOfMemory(e)) return e;
  if (e instanceof Error && e.stack) log.error(`${describe(e)}\n${e.stack}`);
  return { tag: "failed", val: describe(e) };
}

// What SpiderMonkey throws when an allocation fails: the string "out of memory", or an
// InternalError "allocation size overflow".
function isOutOfMemory(e) {
  if (typeof e === "string") return e === "out of memory";
  return e instanceof Error && e.name === "InternalError" && /^(out of memory|allocation size overflow)$/.test(e.message);
}

function output(value) {
  const text = JSON.stringify(value === undefined ? null : value);
  if (text === undefined) throw new Failed("the action returned a value that is not JSON");
  return text;
}

/**
 * The plugin's `run` export from `fn(params, ctx)`; `fn` may be async (fetch works).
 * Export it: `export const run = defineAction((params, ctx) => ...)`.
 */
export function defineAction(fn) {
  return function run(inv) {
    let result;
    try {
      let params;
      try {
        params = JSON.parse(inv.params);
      } catch (e) {
        throw new InvalidParams(`params are not JSON: ${e.message}`);
      }
      const cause = inv.cause;
      const ctx = {
        runId: inv.runId,
        task: inv.task,
        attempt: inv.attempt,
        cause: cause.tag,
        schedule: cause.tag === "schedule" ? cause.val : undefined,
        retryOf: cause.tag === "retry" ? cause.val : undefined,
        event: parseEvent(inv.event),
      };
      result = fn(params, ctx);
    } catch (e) {
      throw actionError(e);
    }
    if (result && typeof result.then === "function") {
      return result.then(output).then(undefined, (e) => {
        throw actionError(e);
      });
    }
    try {
      return output(result);
    } catch (e) {
      throw actionError(e);
    }
  };
}

/**
 * The plugin's `format` export from `fn(delivery)`. Return `{contentType, body, headers}`,
 * a string (sent as text/plain) or any other JSON value (sent as application/json).
 */
export function defineFormatter(fn) {
  const shape = (out) => {
    if (out === undefined || out === null) throw new Error("the formatter returned nothing");
    if (typeof out === "string") out = { contentType: "text/plain; charset=utf-8", body: out };
    else if (out instanceof Uint8Array) out = { contentType: "application/octet-stream", body: out };
    else if (out.contentType === undefined) out = { contentType: "application/json", body: JSON.stringify(out) };
    const body = typeof out.body === "string" ? encoder.encode(out.body) : out.body;
    if (!(body instanceof Uint8Array)) throw new Error("the formatter's body must be a string or a Uint8Array");
    return { contentType: String(out.contentType), body, headers: (out.headers || []).map(([k, v]) => [String(k), String(v)]) };
  };
  return function format(d) {
    let out;
    try {
      const delivery = {
        id: d.id,
        webhook: d.webhook,
        attempt: d.attempt,
        timestamp: d.timestamp,
        event: parseEvent(d.event),
        run: d.run === undefined ? undefined : JSON.parse(d.run),
        config: JSON.parse(d.config),
        template: d.template,
      };
      out = fn(delivery);
      if (!(out && typeof out.then === "function")) return shape(out);
    } catch (e) {
      if (isOutOfMemory(e)) throw e;
      throw describe(e);
    }
    return out.then(shape).then(undefined, (e) => {
      throw isOutOfMemory(e) ? e : describe(e);
    });
  };
}
