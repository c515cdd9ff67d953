/** @module Interface sundial:plugin/types@0.1.0 **/
/**
 * A CloudEvents 1.0 event, as Sundial stores it.
 */
export interface Event {
  /**
   * CloudEvents `id`: unique together with `source`.
   */
  id: string,
  /**
   * CloudEvents `type`, for example `user.created` or `sundial.run.failed`.
   */
  kind: string,
  /**
   * CloudEvents `source`, a URI-reference naming who produced the event.
   */
  source: string,
  /**
   * CloudEvents `subject`: what the event is about, inside the source.
   */
  subject?: string,
  /**
   * CloudEvents `time`, RFC 3339 in UTC.
   */
  time: string,
  /**
   * The event's `data`, as a JSON document (`null` when the event has none).
   */
  data: string,
}
/**
 * Why a run started.
 */
export type Cause = CauseSchedule | CauseEvent | CauseManual | CauseRetry;
/**
 * A schedule fired; the payload is the schedule's name.
 */
export interface CauseSchedule {
  tag: 'schedule',
  val: string,
}
/**
 * An event matched a trigger; the event itself is in `invocation.event`.
 */
export interface CauseEvent {
  tag: 'event',
}
/**
 * Somebody started it by hand (API, CLI or `sundial plugin run`).
 */
export interface CauseManual {
  tag: 'manual',
}
/**
 * It is a retry; the payload is the number of the attempt being retried.
 */
export interface CauseRetry {
  tag: 'retry',
  val: number,
}
/**
 * Everything an action needs to know about the run it is executing.
 */
export interface Invocation {
  /**
   * Stable id of the run (a ULID). The same across retries of the run, so a
   * plugin can use it as an idempotency key.
   */
  runId: string,
  /**
   * Name of the task this run belongs to.
   */
  task: string,
  /**
   * Attempt number, starting at 1.
   */
  attempt: number,
  /**
   * Why the run started.
   */
  cause: Cause,
  /**
   * The task's parameters (after any per-run override), as a JSON document.
   */
  params: string,
  /**
   * The event that caused the run, when one did.
   */
  event?: Event,
}
/**
 * How an action failed. The variant decides what Sundial does next.
 */
export type ActionError = ActionErrorInvalidParams | ActionErrorFailed | ActionErrorRetryable;
/**
 * The parameters are wrong; retrying cannot help. The run fails at once.
 */
export interface ActionErrorInvalidParams {
  tag: 'invalid-params',
  val: string,
}
/**
 * The action failed; the run fails (the task's retry policy may still retry).
 */
export interface ActionErrorFailed {
  tag: 'failed',
  val: string,
}
/**
 * A transient failure (timeout, 503, lock held): worth retrying.
 */
export interface ActionErrorRetryable {
  tag: 'retryable',
  val: string,
}
/**
 * What a formatter is asked to format: one webhook delivery.
 */
export interface Delivery {
  /**
   * Stable id of the delivery (a ULID), also sent as `webhook-id`.
   */
  id: string,
  /**
   * Name of the webhook being delivered to.
   */
  webhook: string,
  /**
   * Delivery attempt number, starting at 1.
   */
  attempt: number,
  /**
   * When the delivery was created, RFC 3339 in UTC.
   */
  timestamp: string,
  /**
   * The event being delivered, when the delivery was caused by an event.
   */
  event?: Event,
  /**
   * The run being reported, as a JSON document, when a task run caused it.
   */
  run?: string,
  /**
   * The webhook's formatter configuration, as a JSON document (`{}` if none).
   */
  config: string,
  /**
   * The webhook's message template, when it has one.
   */
  template?: string,
}
/**
 * The HTTP body a formatter produced.
 */
export interface HttpBody {
  /**
   * Value of the `content-type` header, for example `application/json`.
   */
  contentType: string,
  /**
   * The body bytes.
   */
  body: Uint8Array,
  /**
   * Extra headers to send, in order. Headers that Sundial sets itself
   * (`content-type`, `content-length`, `host` and the signature headers)
   * cannot be overridden.
   */
  headers: Array<[string, string]>,
}
