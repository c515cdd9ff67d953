// world sundial:plugin/formatter@0.1.0
export type Delivery = import('./interfaces/sundial-plugin-types.js').Delivery;
export type HttpBody = import('./interfaces/sundial-plugin-types.js').HttpBody;
export type * as SundialPluginHost010 from './interfaces/sundial-plugin-host.js'; // import sundial:plugin/host@0.1.0
export type * as SundialPluginTypes010 from './interfaces/sundial-plugin-types.js'; // import sundial:plugin/types@0.1.0
/**
* Turn a delivery into the HTTP body to send, or explain why it cannot.
*/
export function format(delivery: Delivery): HttpBody;
export type Result<T, E> = { tag: 'ok', val: T } | { tag: 'err', val: E };
