import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { singleRawHeader } from './headers.ts';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The caller's `X-Request-Id` when it is one safe token, else a fresh one (two of them, which
 * Node would join with ", ", are not one token). Read from the raw headers: the decision path
 * never builds `incoming.headers`.
 */
export function requestIdOf(incoming: IncomingMessage): string {
  const given = singleRawHeader(incoming.rawHeaders, 'x-request-id');
  return given !== undefined && REQUEST_ID.test(given) ? given : randomUUID();
}
