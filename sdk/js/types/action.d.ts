// world sundial:plugin/action@0.1.0
export type Invocation = import('./interfaces/sundial-plugin-types.js').Invocation;
export type ActionError = import('./interfaces/sundial-plugin-types.js').ActionError;
export type * as SundialPluginHost010 from './interfaces/sundial-plugin-host.js'; // import sundial:plugin/host@0.1.0
export type * as SundialPluginMail010 from './interfaces/sundial-plugin-mail.js'; // import sundial:plugin/mail@0.1.0
export type * as SundialPluginTypes010 from './interfaces/sundial-plugin-types.js'; // import sundial:plugin/types@0.1.0
export type * as WasiClocksMonotonicClock0212 from './interfaces/wasi-clocks-monotonic-clock.js'; // import wasi:clocks/monotonic-clock@0.2.12
export type * as WasiHttpOutgoingHandler0212 from './interfaces/wasi-http-outgoing-handler.js'; // import wasi:http/outgoing-handler@0.2.12
export type * as WasiHttpTypes0212 from './interfaces/wasi-http-types.js'; // import wasi:http/types@0.2.12
export type * as WasiIoError0212 from './interfaces/wasi-io-error.js'; // import wasi:io/error@0.2.12
export type * as WasiIoPoll0212 from './interfaces/wasi-io-poll.js'; // import wasi:io/poll@0.2.12
export type * as WasiIoStreams0212 from './interfaces/wasi-io-streams.js'; // import wasi:io/streams@0.2.12
/**
* Run the action once. Returns the run's output as a JSON document, or an
* error saying whether a retry can help.
*/
export function run(inv: Invocation): string;
export type Result<T, E> = { tag: 'ok', val: T } | { tag: 'err', val: E };
