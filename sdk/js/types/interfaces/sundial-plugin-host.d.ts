/** @module Interface sundial:plugin/host@0.1.0 **/
/**
 * Append a line to the run's log. Always allowed. Lines beyond the plugin's
 * log limits (lines and bytes per run) are dropped and the log is marked
 * truncated; the call itself never fails.
 */
export function log(level: Level, message: string): void;
/**
 * Emit an event of type `kind` with optional `subject` and JSON `data`.
 * The event's `source` is set by the host to `sundial/plugin/NAME` and the run
 * that emitted it is recorded. Fails when the plugin is not granted
 * `emit-events`, when `data` is not valid JSON, or when the per-run event limit
 * is reached.
 */
export function emitEvent(kind: string, subject: string | undefined, data: string): void;
/**
 * Read a value from the plugin's own key-value namespace (persisted by the
 * host; other plugins cannot see it). `none` when the key is absent. Fails when
 * the plugin is not granted `kv`.
 */
export function kvGet(key: string): Uint8Array | undefined;
/**
 * Write a value into the plugin's key-value namespace. Fails when the plugin
 * is not granted `kv`, or the key (at most 256 bytes) or value (at most 1 MiB)
 * is too large.
 */
export function kvSet(key: string, value: Uint8Array): void;
/**
 * Delete a key from the plugin's key-value namespace (no error if absent).
 */
export function kvDelete(key: string): void;
/**
 * The value of secret `name`, if the plugin was granted it and it exists.
 * A secret that is not granted reads as `none` and the attempt is logged.
 */
export function secret(name: string): string | undefined;
/**
 * Severity of a log line.
 * # Variants
 * 
 * ## `"trace"`
 * 
 * Very detailed tracing.
 * ## `"debug"`
 * 
 * Debugging detail.
 * ## `"info"`
 * 
 * Normal progress.
 * ## `"warn"`
 * 
 * Something odd that did not stop the run.
 * ## `"error"`
 * 
 * Something failed.
 */
export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
