/** @module Interface sundial:plugin/mail@0.1.0 **/
/**
 * Send one message. Returns the relay's answer, for example
 * `250 2.0.0 Ok: queued as 4F2A`.
 */
export function send(message: Message): string;
/**
 * One message.
 */
export interface Message {
  /**
   * `From`, as `addr@example.com` or `Name <addr@example.com>`; none = the
   * relay's configured default `From`.
   */
  from?: string,
  /**
   * `To` addresses (same forms as `from`).
   */
  to: Array<string>,
  /**
   * `Cc` addresses.
   */
  cc: Array<string>,
  /**
   * `Bcc` addresses: envelope recipients only, never in the headers.
   */
  bcc: Array<string>,
  /**
   * `Reply-To`, if any.
   */
  replyTo?: string,
  /**
   * The subject (UTF-8; encoded by the host as needed).
   */
  subject: string,
  /**
   * The plain-text body.
   */
  body: string,
  /**
   * An HTML alternative of the body, if any.
   */
  html?: string,
}
/**
 * Why a message was not sent.
 */
export type MailError = MailErrorDenied | MailErrorInvalid | MailErrorRejected | MailErrorUnavailable;
/**
 * The plugin is not granted `mail`, or the daemon has no relay configured.
 */
export interface MailErrorDenied {
  tag: 'denied',
  val: string,
}
/**
 * The message is invalid (a bad address, no recipient, too large): retrying
 * cannot help.
 */
export interface MailErrorInvalid {
  tag: 'invalid',
  val: string,
}
/**
 * The relay refused the message or a recipient for good (5xx), with its answer.
 */
export interface MailErrorRejected {
  tag: 'rejected',
  val: string,
}
/**
 * The relay could not be reached, timed out, or answered 4xx: worth retrying.
 */
export interface MailErrorUnavailable {
  tag: 'unavailable',
  val: string,
}
