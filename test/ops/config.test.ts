import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, loadServeConfig } from '../../src/config.ts';

const problemsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
};

const SERVE_ENV = {
  GATE_UPSTREAM_URL: 'http://127.0.0.1:9000',
  GATE_JWT_ISSUER: 'https://id.example.com',
  GATE_JWT_AUDIENCE: 'gate',
  GATE_JWT_SECRET: 'x'.repeat(40),
  GATE_TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
  GATE_INVITE_URL: 'https://app.example.com/invites/{token}',
};

describe('configuration: one pass', () => {
  it('reports seven bad values of different kinds in one run, one problem per variable', () => {
    const problems = problemsOf(() =>
      loadConfig(
        {
          GATE_PORT: 'eighty',
          GATE_MODE: 'loud',
          GATE_JWT_ALGORITHMS: 'none',
          GATE_TOKEN_ENCRYPTION_KEY: 'short',
          GATE_DATABASE_SYNC_URL: 'libsql://primary.example.com',
          GATE_DATABASE_URL: 'libsql://db.example.com',
          GATE_WEBHOOK_SECRET: 'not-a-secret',
          GATE_WEBHOOK_URL: 'ftp://x',
          GATE_SHUTDOWN_GRACE_MS: '-1',
        },
        { serve: true },
      ),
    );
    const names = problems.map((p) => p.split(':')[0]);
    expect(names).toEqual(
      expect.arrayContaining([
        'GATE_PORT',
        'GATE_MODE',
        'GATE_JWT_ALGORITHMS',
        'GATE_TOKEN_ENCRYPTION_KEY',
        'GATE_DATABASE_SYNC_URL',
        'GATE_WEBHOOK_SECRET',
        'GATE_WEBHOOK_URL',
        'GATE_SHUTDOWN_GRACE_MS',
        // serve's requirements in the same run
        'GATE_UPSTREAM_URL',
        'GATE_JWT_ISSUER',
        'GATE_INVITE_URL',
      ]),
    );
    // A variable that is bad is not also reported as missing.
    expect(names.filter((n) => n === 'GATE_TOKEN_ENCRYPTION_KEY')).toHaveLength(1);
    expect(new ConfigError(problems).message.split('\n')).toHaveLength(1);
  });

  it('never quotes a value in a message (they may be secrets)', () => {
    const secret = 'whsec_' + 'Zm9v'.repeat(2);
    const smtp = 'smtp://user:hunter2-very-secret@';
    const problems = problemsOf(() => loadConfig({ GATE_WEBHOOK_SECRET: secret, GATE_SMTP_URL: smtp, GATE_JWT_SECRET: 'short-secret-value' }));
    const text = problems.join('\n');
    expect(text).toContain('GATE_WEBHOOK_SECRET');
    expect(text).toContain('GATE_SMTP_URL');
    expect(text).toContain('GATE_JWT_SECRET: must be at least 32 bytes');
    expect(text).not.toContain('Zm9v');
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('short-secret-value');
  });

  it('has the documented defaults for the operational variables', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      host: '0.0.0.0',
      port: 8080,
      authzPort: undefined,
      authzHost: '127.0.0.1',
      shutdownGraceMs: 5000,
      drainTimeoutMs: 8000,
      dbWriteTimeoutMs: 5000,
      logBufferBytes: 8388608,
      smtpUrl: undefined,
      mailFrom: undefined,
      webhookUrl: undefined,
      webhookSecret: undefined,
      otlpEndpoint: undefined,
      inviteUrl: 'http://localhost:8080/v1/invites/{token}',
    });
  });

  it('reads the operational variables', () => {
    const c = loadConfig({
      GATE_AUTHZ_PORT: '9191',
      GATE_AUTHZ_HOST: '127.0.0.2',
      GATE_SHUTDOWN_GRACE_MS: '0',
      GATE_DRAIN_TIMEOUT_MS: '2500',
      GATE_DB_WRITE_TIMEOUT_MS: '750',
      GATE_LOG_BUFFER_BYTES: '1048576',
      GATE_SMTP_URL: 'smtps://mailer:pw@smtp.example.com:465',
      GATE_MAIL_FROM: 'Packagento <noreply@example.com>',
      GATE_WEBHOOK_URL: 'http://hooks.internal:8080/gate',
      GATE_WEBHOOK_SECRET: 'whsec_' + randomBytes(32).toString('base64'),
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
    });
    expect(c.authzPort).toBe(9191);
    expect(c.authzHost).toBe('127.0.0.2');
    expect([c.shutdownGraceMs, c.drainTimeoutMs, c.dbWriteTimeoutMs, c.logBufferBytes]).toEqual([0, 2500, 750, 1048576]);
    expect(c.smtpUrl).toBe('smtps://mailer:pw@smtp.example.com:465');
    expect(c.mailFrom).toBe('Packagento <noreply@example.com>');
    expect(c.webhookUrl).toBe('http://hooks.internal:8080/gate');
    expect(c.webhookSecret).toMatch(/^whsec_/);
    expect(c.otlpEndpoint).toBe('http://127.0.0.1:4318');
  });

  it('the forward-auth listener is never the public port', () => {
    expect(problemsOf(() => loadConfig({ GATE_PORT: '8080', GATE_AUTHZ_PORT: '8080' }))).toEqual([
      'GATE_AUTHZ_PORT: must differ from GATE_PORT (the forward-auth listener is never the public one)',
    ]);
    expect(problemsOf(() => loadConfig({ GATE_AUTHZ_PORT: '8080' }))[0]).toMatch(/^GATE_AUTHZ_PORT: must differ/);
    expect(loadConfig({ GATE_PORT: '0', GATE_AUTHZ_PORT: '0' }).authzPort).toBe(0);
  });

  it('email and webhooks come in pairs', () => {
    expect(problemsOf(() => loadConfig({ GATE_SMTP_URL: 'smtp://127.0.0.1:2525' }))).toEqual(['GATE_MAIL_FROM: required when GATE_SMTP_URL is set']);
    expect(problemsOf(() => loadConfig({ GATE_MAIL_FROM: 'a@example.com' }))).toEqual(['GATE_SMTP_URL: required when GATE_MAIL_FROM is set']);
    expect(problemsOf(() => loadConfig({ GATE_WEBHOOK_URL: 'https://h.example.com' }))).toEqual(['GATE_WEBHOOK_SECRET: required when GATE_WEBHOOK_URL is set']);
    expect(problemsOf(() => loadConfig({ GATE_SMTP_URL: 'http://mail.example.com', GATE_MAIL_FROM: 'nobody' }))).toEqual([
      'GATE_SMTP_URL: must be an smtp:// or smtps:// URL with a host',
      'GATE_MAIL_FROM: must be an email address, e.g. "Packagento <noreply@example.com>"',
    ]);
    // Too short a webhook secret (Standard Webhooks: 24..64 bytes).
    expect(problemsOf(() => loadConfig({ GATE_WEBHOOK_URL: 'https://h.example.com', GATE_WEBHOOK_SECRET: 'whsec_' + randomBytes(8).toString('base64') }))[0]).toMatch(
      /^GATE_WEBHOOK_SECRET: must be whsec_/,
    );
  });

  it('serve requires GATE_INVITE_URL (no localhost default), and it must be an http(s) template', () => {
    const { GATE_INVITE_URL: _omit, ...withoutInvite } = SERVE_ENV;
    expect(problemsOf(() => loadServeConfig(withoutInvite))).toEqual([
      'GATE_INVITE_URL: required for serve (the public accept-link template, e.g. https://app.example.com/invites/{token})',
    ]);
    expect(problemsOf(() => loadServeConfig({ ...SERVE_ENV, GATE_INVITE_URL: 'https://app.example.com/invites/' }))).toEqual(['GATE_INVITE_URL: must contain {token}']);
    expect(problemsOf(() => loadServeConfig({ ...SERVE_ENV, GATE_INVITE_URL: 'app/{token}' }))).toEqual(['GATE_INVITE_URL: must be an http(s) URL']);
    expect(loadServeConfig(SERVE_ENV).inviteUrl).toBe('https://app.example.com/invites/{token}');
    // Outside serve the old default stays (tools and tests that never mail a link).
    expect(loadConfig(withoutInvite).inviteUrl).toBe('http://localhost:8080/v1/invites/{token}');
  });
});

describe('configuration: the JWT key is parsed at load time', () => {
  const { GATE_JWT_SECRET: _s, ...base } = SERVE_ENV;
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ed = generateKeyPairSync('ed25519');

  it('accepts SPKI PEMs and public JWKs of each supported type', () => {
    for (const k of [rsa, ec, ed]) {
      const pem = k.publicKey.export({ type: 'spki', format: 'pem' }).toString();
      expect(loadServeConfig({ ...base, GATE_JWT_PUBLIC_KEY: pem }).jwtKey).toEqual({ kind: 'public-key', key: pem });
      const jwk = JSON.stringify(k.publicKey.export({ format: 'jwk' }));
      expect(loadServeConfig({ ...base, GATE_JWT_PUBLIC_KEY: jwk }).jwtKey?.kind).toBe('public-key');
    }
  });

  it('names GATE_JWT_PUBLIC_KEY for a key that does not decode, and never quotes it', () => {
    const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const broken = pem.replace(/[A-Za-z]{8}/, 'AAAAAAAA').replace(/\n[A-Za-z0-9+/]{20}/, '\n!!!!');
    const problems = problemsOf(() => loadServeConfig({ ...base, GATE_JWT_PUBLIC_KEY: broken }));
    expect(problems).toEqual(['GATE_JWT_PUBLIC_KEY: is not a valid PEM public key (cannot decode it)']);
    expect(problemsOf(() => loadServeConfig({ ...base, GATE_JWT_PUBLIC_KEY: 'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA' }))).toEqual([
      'GATE_JWT_PUBLIC_KEY: must be a PEM public key (-----BEGIN PUBLIC KEY-----, SPKI) or a public JWK',
    ]);
    expect(problemsOf(() => loadServeConfig({ ...base, GATE_JWT_PUBLIC_KEY: '{"kty":"RSA","n":"abc"' }))).toEqual([
      'GATE_JWT_PUBLIC_KEY: is neither a PEM public key nor valid JSON for a JWK',
    ]);
  });

  it('refuses private and symmetric keys, and algorithms the key cannot verify', () => {
    const privatePem = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(problemsOf(() => loadServeConfig({ ...base, GATE_JWT_PUBLIC_KEY: privatePem }))).toEqual(['GATE_JWT_PUBLIC_KEY: must be a public key, not a private one']);
    const privateJwk = JSON.stringify(ec.privateKey.export({ format: 'jwk' }));
    expect(problemsOf(() => loadServeConfig({ ...base, GATE_JWT_PUBLIC_KEY: privateJwk }))).toEqual([
      'GATE_JWT_PUBLIC_KEY: must be a public key, not a private or symmetric one',
    ]);
    const ecPem = ec.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(problemsOf(() => loadServeConfig({ ...base, GATE_JWT_PUBLIC_KEY: ecPem, GATE_JWT_ALGORITHMS: 'RS256' }))).toEqual([
      'GATE_JWT_PUBLIC_KEY: an ec key cannot verify RS256',
    ]);
  });
});
