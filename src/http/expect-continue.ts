import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * `Expect: 100-continue` answered only after an allow (CONTRACT §4 "Response hygiene"):
 * the server's `checkContinue` event marks the request here instead of Node's
 * automatic `100 Continue`, and the decision path sends it once the request is
 * allowed — or when the decision itself needs the body (a rank rule), after
 * authentication. A refused request never gets one (and its connection is closed,
 * since the client may or may not send the body).
 */
const awaiting = new WeakMap<IncomingMessage, ServerResponse>();

export function markExpectContinue(incoming: IncomingMessage, outgoing: ServerResponse): void {
  awaiting.set(incoming, outgoing);
}

/** Is a `100 Continue` still owed (the client is waiting before it sends its body)? */
export function awaitsContinue(incoming: IncomingMessage): boolean {
  return awaiting.has(incoming);
}

/** Sends the owed `100 Continue`, once; nothing when none is owed. */
export function sendContinue(incoming: IncomingMessage): void {
  const outgoing = awaiting.get(incoming);
  if (outgoing === undefined) return;
  awaiting.delete(incoming);
  if (!outgoing.headersSent && !outgoing.destroyed) outgoing.writeContinue();
}
