// Types of the Sundial plugin SDK for JavaScript and TypeScript. The contract's own
// types (generated from wit/sundial.wit with `jco types`) are in ./types.

/** Base of the errors an action throws on purpose; `kind` is the contract's variant. */
export class PluginError extends Error {
  readonly kind: "invalid-params" | "failed" | "retryable";
}
/** The parameters are wrong; retrying cannot help. The run fails at once. */
export class InvalidParams extends PluginError {
  readonly kind: "invalid-params";
}
/** The action failed; the task's retry policy may still retry it. */
export class Failed extends PluginError {
  readonly kind: "failed";
}
/** A transient failure (a timeout, a 503, a lock held): worth retrying. */
export class Retryable extends PluginError {
  readonly kind: "retryable";
}
/** The host refused a call: not granted, a limit reached, or invalid input. */
export class HostError extends Error {}

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A CloudEvents 1.0 event as Sundial stores it; `data` is parsed JSON. */
export interface Event {
  id: string;
  kind: string;
  source: string;
  subject?: string;
  time: string;
  data: Json;
}

/** Everything about the run besides its parameters. */
export interface Context {
  /** The run's id (a ULID), the same across retries: an idempotency key. */
  runId: string;
  task: string;
  /** Attempt number, from 1. */
  attempt: number;
  cause: "schedule" | "event" | "manual" | "retry";
  /** The schedule that fired, when `cause` is "schedule". */
  schedule?: string;
  /** The attempt being retried, when `cause` is "retry". */
  retryOf?: number;
  /** The event that caused the run, when one did. */
  event?: Event;
}

/** One webhook delivery to format; `run` and `config` are parsed JSON. */
export interface Delivery {
  id: string;
  webhook: string;
  attempt: number;
  timestamp: string;
  event?: Event;
  run?: Json;
  config: Json;
  template?: string;
}

/** The HTTP body a formatter produces. */
export interface Body {
  contentType: string;
  body: string | Uint8Array;
  headers?: [string, string][];
}

/** The run's log. Never fails; lines beyond the plugin's log limits are dropped. */
export const log: {
  trace(message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
};

/** The plugin's own key-value namespace (needs the `kv` grant); refusals throw HostError. */
export const kv: {
  get(key: string): Uint8Array | undefined;
  getString(key: string): string | undefined;
  getJson<T = Json>(key: string): T | undefined;
  set(key: string, value: string | Uint8Array): void;
  setJson(key: string, value: Json): void;
  delete(key: string): void;
};

/** The value of secret `name`; undefined when it is not granted or does not exist. */
export function secret(name: string): string | undefined;

/** Emit an event of type `kind` (needs the `emit-events` grant); refusals throw HostError. */
export function emitEvent(kind: string, data?: Json, subject?: string): void;

/** The `run` export: `export const run = defineAction((params, ctx) => ...)`. The function
 * may be async (`fetch` works through wasi:http, to granted hosts). What it throws maps to
 * the contract's errors: PluginError subclasses by kind, anything else `failed`. */
export function defineAction<P = any, O = Json>(
  fn: (params: P, ctx: Context) => O | Promise<O>,
): (inv: unknown) => string | Promise<string>;

/** The `format` export: return a Body, a string (text/plain) or JSON (application/json). */
export function defineFormatter(fn: (delivery: Delivery) => Body | string | Json): (delivery: unknown) => unknown;
