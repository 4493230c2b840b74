import type { IncomingMessage } from 'node:http';
import { problem, type Problem } from './problem.ts';

/** Largest JSON body the gateway's own API accepts. */
export const MAX_BODY_BYTES = 64 * 1024;

/** Does the request carry a body (RFC 9112 §6.3)? */
export function hasBody(incoming: IncomingMessage): boolean {
  const te = incoming.headers['transfer-encoding'];
  if (te !== undefined) return true;
  const cl = incoming.headers['content-length'];
  return cl !== undefined && cl !== '0';
}

/**
 * Reads the whole body, refusing more than `limit` bytes whether or not a
 * Content-Length was sent (chunked bodies are counted as they arrive).
 */
export async function readBody(incoming: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer | Problem> {
  const declared = incoming.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    return problem('payload_too_large', `the body is larger than ${limit} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of incoming as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) {
        // Stop reading: the connection is closed after the 413, so the rest is never parsed.
        incoming.pause();
        return problem('payload_too_large', `the body is larger than ${limit} bytes`);
      }
      chunks.push(chunk);
    }
  } catch {
    return problem('bad_request', 'the request body could not be read');
  }
  return Buffer.concat(chunks);
}

/** Parses a JSON object body; the content type must be JSON. */
export function parseJsonObject(contentType: string | undefined, raw: Buffer): Record<string, unknown> | Problem {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json' && !/^application\/[a-z0-9.+-]+\+json$/.test(type)) {
    return problem('unsupported_media_type', 'send the body as application/json');
  }
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    return problem('invalid_body', 'the body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return problem('invalid_body', 'the body must be a JSON object');
  }
  return value as Record<string, unknown>;
}
