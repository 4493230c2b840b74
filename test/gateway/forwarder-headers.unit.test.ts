/**
 * The forwarder's header rules on their own (CONTRACT §4): what goes upstream and what comes back.
 */
import { describe, expect, it } from 'vitest';
import { downstreamResponseHeaders, upstreamRequestHeaders } from '../../src/pipeline/forward.ts';
import { normalizeHeaderName } from '../../src/http/headers.ts';

const added = { host: 'upstream:9000', forwardedFor: '10.0.0.7', forwardedProto: 'https', forwardedHost: 'gate.example' };
const identity = { 'x-packagento-principal': 'user:vic', 'x-packagento-roles': 'viewer', 'x-request-id': 'rid-1' };

/** Pairs from a flat raw header list. */
const pairs = (raw: string[]): [string, string][] => raw.flatMap((_, i) => (i % 2 ? [] : [[raw[i]!, raw[i + 1]!] as [string, string]]));
const named = (raw: string[], name: string): string[] => pairs(raw).filter(([k]) => k.toLowerCase() === name).map(([, v]) => v);

describe('normalizeHeaderName', () => {
  it.each([
    ['X_Packagento_Principal', 'x-packagento-principal'],
    ['x.packagento.roles', 'x-packagento-roles'],
    ['X-HTTP-Method-Override', 'x-http-method-override'],
    ['Authorization', 'authorization'],
  ])('%s → %s', (name, normalized) => expect(normalizeHeaderName(name)).toBe(normalized));
});

describe('upstreamRequestHeaders', () => {
  it('keeps ordinary headers as sent (order, case, duplicates) and appends the gateway headers', () => {
    const out = upstreamRequestHeaders(['Accept', 'a', 'X-Multi', '1', 'X-Multi', '2', 'User-Agent', 'Composer'], added, identity);
    expect(pairs(out)).toEqual([
      ['Accept', 'a'],
      ['X-Multi', '1'],
      ['X-Multi', '2'],
      ['User-Agent', 'Composer'],
      ['host', 'upstream:9000'],
      ['x-forwarded-for', '10.0.0.7'],
      ['x-forwarded-proto', 'https'],
      ['x-forwarded-host', 'gate.example'],
      ['x-packagento-principal', 'user:vic'],
      ['x-packagento-roles', 'viewer'],
      ['x-request-id', 'rid-1'],
    ]);
  });

  it.each([
    'Authorization',
    'authorization',
    'Proxy-Authorization',
    'Host',
    'Connection',
    'Keep-Alive',
    'Proxy-Connection',
    'Transfer-Encoding',
    'TE',
    'Trailer',
    'Upgrade',
    'Expect',
    'Forwarded',
    'X-Forwarded-For',
    'X_Forwarded_For',
    'x.forwarded.host',
    'X-Forwarded-Proto',
    'X-Forwarded-Port',
    'X-Forwarded-Prefix',
    'X-Real-IP',
    'X-Request-Id',
    'X_Request_ID',
    'X-Packagento-Principal',
    'x_packagento_roles',
    'X.Packagento.Workspace',
    'X-PACKAGENTO-ANYTHING',
  ])('drops the caller header %s', (name) => {
    const out = upstreamRequestHeaders([name, 'caller-value', 'X-Kept', 'k'], added, identity);
    expect(out).not.toContain('caller-value');
    // Only the gateway's own spelling of a name it sets itself may remain.
    const kept = pairs(out).filter(([k]) => normalizeHeaderName(k) === normalizeHeaderName(name));
    for (const [k] of kept) expect(k).toBe(k.toLowerCase());
    expect(named(out, 'x-kept')).toEqual(['k']);
  });

  it('drops every header named in any Connection header, compared after normalization', () => {
    const out = upstreamRequestHeaders(
      ['Connection', 'X-One, x_two', 'Connection', ' X.Three ,keep-alive', 'X-One', '1', 'X-Two', '2', 'x-three', '3', 'X-Four', '4'],
      added,
      identity,
    );
    expect(named(out, 'x-one')).toEqual([]);
    expect(named(out, 'x-two')).toEqual([]);
    expect(named(out, 'x-three')).toEqual([]);
    expect(named(out, 'x-four')).toEqual(['4']);
  });

  it('Connection cannot remove what the gateway adds', () => {
    const out = upstreamRequestHeaders(['Connection', 'host, x-forwarded-for, x-packagento-principal, x-request-id'], added, identity);
    expect(named(out, 'host')).toEqual(['upstream:9000']);
    expect(named(out, 'x-forwarded-for')).toEqual(['10.0.0.7']);
    expect(named(out, 'x-packagento-principal')).toEqual(['user:vic']);
    expect(named(out, 'x-request-id')).toEqual(['rid-1']);
  });

  it('no x-forwarded-host without a Host from the caller', () => {
    const out = upstreamRequestHeaders([], { ...added, forwardedHost: undefined }, identity);
    expect(named(out, 'x-forwarded-host')).toEqual([]);
  });
});

describe('downstreamResponseHeaders', () => {
  it('drops hop-by-hop and Connection-nominated headers, keeps the rest as sent', () => {
    const out = downstreamResponseHeaders([
      'Content-Type', 'application/json',
      'Connection', 'X-Internal',
      'X-Internal', 'secret',
      'Keep-Alive', 'timeout=5',
      'Transfer-Encoding', 'chunked',
      'Proxy-Authenticate', 'Basic',
      'Upgrade', 'h2c',
      'Trailer', 'X-Sum',
      'Set-Cookie', 'a=1',
      'Set-Cookie', 'b=2',
    ]);
    expect(pairs(out)).toEqual([
      ['Content-Type', 'application/json'],
      ['Set-Cookie', 'a=1'],
      ['Set-Cookie', 'b=2'],
    ]);
  });

  it("with a request id, the response carries the gateway's x-request-id (and only it)", () => {
    expect(named(downstreamResponseHeaders(['X-Request-Id', 'upstream-own', 'ETag', '"1"'], 'rid-9'), 'x-request-id')).toEqual(['rid-9']);
    expect(named(downstreamResponseHeaders(['ETag', '"1"'], 'rid-9'), 'x-request-id')).toEqual(['rid-9']);
  });
});
