import { checkContract } from './contract.ts';
import { signUserJwt } from './jwt.ts';

/** A small HTTP client for the gateway's own API, as a signed-in user. */
export interface ApiResponse {
  status: number;
  body: any;
  headers: Headers;
}

export async function call(
  baseUrl: string,
  method: string,
  path: string,
  opts: { as?: string; email?: string; emailVerified?: boolean; body?: unknown; headers?: Record<string, string> } = {},
): Promise<ApiResponse> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.as !== undefined) {
    const jwt = await signUserJwt(opts.as, { email: opts.email ?? `${opts.as}@example.com`, emailVerified: opts.emailVerified ?? true });
    headers['authorization'] = `Bearer ${jwt}`;
  }
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(baseUrl + path, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  await checkContract(baseUrl, method, path, { status: res.status, contentType: res.headers.get('content-type'), text });
  let parsed: unknown = text;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** The link token at the end of an accept_url. */
export function linkToken(acceptUrl: string): string {
  return acceptUrl.split('/').pop()!;
}

export function basic(publicKey: string, privateKey: string): Record<string, string> {
  return { authorization: 'Basic ' + Buffer.from(`${publicKey}:${privateKey}`).toString('base64') };
}

/** A clock tests can move forward. */
export function testClock(start = Date.now()) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}
