import { createPublicKey, type KeyObject } from 'node:crypto';
import { z } from 'zod';

/** Log levels in increasing severity. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type JwtKeyConfig =
  | { kind: 'jwks'; url: string }
  | { kind: 'public-key'; key: string }
  | { kind: 'secret'; secret: string };

export interface Config {
  host: string;
  port: number;
  upstreamUrl: URL | undefined;
  databaseUrl: string;
  databaseAuthToken: string | undefined;
  databaseSyncUrl: string | undefined;
  policyDir: string;
  jwtIssuer: string | undefined;
  jwtAudience: string | undefined;
  jwtKey: JwtKeyConfig | undefined;
  jwtAlgorithms: string[] | undefined;
  tokenEncryptionKey: Buffer | undefined;
  /** The accept-link template. `serve` requires GATE_INVITE_URL; elsewhere a localhost default. */
  inviteUrl: string;
  inviteTtlDays: number;
  mode: 'enforce' | 'shadow';
  upstreamTimeoutMs: number;
  logLevel: LogLevel;
  /** Port of the forward-auth listener (CONTRACT §4b); undefined: off. Never the public port. */
  authzPort: number | undefined;
  authzHost: string;
  /** After SIGTERM: readyz is 503 at once, requests are still served this long, then the listener closes. */
  shutdownGraceMs: number;
  /** Then in-flight requests get this long before they are cut. */
  drainTimeoutMs: number;
  /** Longest a write waits for a database lock before `503 unavailable`. */
  dbWriteTimeoutMs: number;
  /** Decision-log bytes buffered for a slow reader before lines are dropped (and counted). */
  logBufferBytes: number;
  /** `smtp://` or `smtps://` URL for invite emails (may carry credentials: never log it). */
  smtpUrl: string | undefined;
  mailFrom: string | undefined;
  /** Where change events are POSTed (Standard Webhooks). */
  webhookUrl: string | undefined;
  /** The `whsec_…` signing secret, as configured (prefix included). */
  webhookSecret: string | undefined;
  /** OTEL_EXPORTER_OTLP_ENDPOINT: base URL of an OTLP/HTTP receiver; undefined: no export. */
  otlpEndpoint: string | undefined;
}

/** What `serve` needs on top of `Config` (see `loadServeConfig`). */
export type ServeConfig = Config & {
  upstreamUrl: URL;
  jwtIssuer: string;
  jwtAudience: string;
  jwtKey: JwtKeyConfig;
  tokenEncryptionKey: Buffer;
};

/** Thrown by `loadConfig`; `problems` names every bad variable at once. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'ConfigError';
  }
}

/** The accept-link default outside `serve` (tests, tools); `serve` requires its own. */
export const DEV_INVITE_URL = 'http://localhost:8080/v1/invites/{token}';

const parseUrl = (v: string): URL | undefined => {
  try {
    return new URL(v);
  } catch {
    return undefined;
  }
};

const LOOPBACK = ['localhost', '127.0.0.1', '[::1]'];

const httpUrl = z.string().refine((v) => {
  const u = parseUrl(v);
  return u !== undefined && (u.protocol === 'http:' || u.protocol === 'https:') && u.username === '' && u.password === '';
}, 'must be an http(s) URL without credentials');

const intInRange = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be between ${min} and ${max}`);

/** A plain address check: one @, no spaces or angle brackets (RFC 5321 envelope sender, roughly). */
const MAIL_ADDRESS = /^[^\s@<>()",;:]+@[^\s@<>()",;:]+\.[^\s@<>()",;:]+$/;

/**
 * One schema per variable. Each is validated on its own, so one bad value never hides
 * another: every problem is reported in the same run (CONTRACT §2).
 */
const FIELDS = {
  GATE_HOST: z.string().min(1).default('0.0.0.0'),
  GATE_PORT: intInRange(0, 65535).default(8080),
  GATE_UPSTREAM_URL: httpUrl.optional(),
  GATE_DATABASE_URL: z
    .string()
    .regex(/^(file:|libsql:\/\/|https?:\/\/|wss?:\/\/)/, 'must start with file:, libsql://, http(s):// or ws(s)://')
    .refine((v) => v.startsWith('file:') || parseUrl(v)?.hostname, 'must name a host')
    .default('file:./data/gate.db'),
  GATE_DATABASE_AUTH_TOKEN: z.string().optional(),
  GATE_DATABASE_SYNC_URL: z
    .string()
    .regex(/^(libsql:\/\/|https?:\/\/|wss?:\/\/)/, 'must start with libsql://, http(s):// or ws(s)://')
    .optional(),
  GATE_POLICY_DIR: z.string().min(1).default('./policies'),
  GATE_JWT_ISSUER: z.string().optional(),
  GATE_JWT_AUDIENCE: z.string().optional(),
  // Keys fetched over plain HTTP could be swapped in transit: HTTPS, except on loopback.
  GATE_JWKS_URL: httpUrl
    .refine((v) => {
      const u = new URL(v);
      return u.protocol === 'https:' || LOOPBACK.includes(u.hostname);
    }, 'must be an https:// URL (http:// only on loopback)')
    .optional(),
  GATE_JWT_PUBLIC_KEY: z.string().optional(),
  GATE_JWT_SECRET: z
    .string()
    .refine((v) => Buffer.byteLength(v, 'utf8') >= 32, 'must be at least 32 bytes')
    .optional(),
  GATE_JWT_ALGORITHMS: z.string().optional(),
  GATE_TOKEN_ENCRYPTION_KEY: z.string().optional(),
  GATE_INVITE_URL: z
    .string()
    .refine((v) => v.includes('{token}'), 'must contain {token}')
    .refine((v) => {
      const u = parseUrl(v.replaceAll('{token}', 'x'));
      return u !== undefined && (u.protocol === 'http:' || u.protocol === 'https:');
    }, 'must be an http(s) URL')
    .optional(),
  GATE_INVITE_TTL_DAYS: intInRange(1, 365).default(14),
  GATE_MODE: z.enum(['enforce', 'shadow']).default('enforce'),
  GATE_UPSTREAM_TIMEOUT_MS: intInRange(1, 600_000).default(30_000),
  GATE_LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  GATE_AUTHZ_PORT: intInRange(0, 65535).optional(),
  GATE_AUTHZ_HOST: z.string().min(1).default('127.0.0.1'),
  GATE_SHUTDOWN_GRACE_MS: intInRange(0, 600_000).default(5000),
  GATE_DRAIN_TIMEOUT_MS: intInRange(0, 600_000).default(8000),
  GATE_DB_WRITE_TIMEOUT_MS: intInRange(1, 600_000).default(5000),
  GATE_LOG_BUFFER_BYTES: intInRange(65_536, 1_073_741_824).default(8_388_608),
  // May carry credentials (smtp://user:pass@host): messages never echo the value.
  GATE_SMTP_URL: z
    .string()
    .refine((v) => {
      const u = parseUrl(v);
      return u !== undefined && (u.protocol === 'smtp:' || u.protocol === 'smtps:') && u.hostname !== '';
    }, 'must be an smtp:// or smtps:// URL with a host')
    .optional(),
  GATE_MAIL_FROM: z
    .string()
    .refine((v) => {
      // "Name <addr@host>" or a bare address.
      const m = /^[^<>]*<([^<>]+)>\s*$/.exec(v);
      return MAIL_ADDRESS.test(m ? m[1]! : v.trim());
    }, 'must be an email address, e.g. "Packagento <noreply@example.com>"')
    .optional(),
  // Deliveries are signed, so plain http (a service inside the cluster) is allowed.
  GATE_WEBHOOK_URL: httpUrl.optional(),
  // Standard Webhooks: "whsec_" + base64 of 24..64 random bytes.
  GATE_WEBHOOK_SECRET: z
    .string()
    .refine((v) => {
      const m = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(v);
      if (!m) return false;
      const n = Buffer.from(m[1]!, 'base64').length;
      return n >= 24 && n <= 64;
    }, 'must be whsec_ followed by 24 to 64 base64-encoded random bytes (e.g. `echo whsec_$(openssl rand -base64 32)`)')
    .optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: httpUrl.optional(),
} as const;

type FieldName = keyof typeof FIELDS;
type Parsed = { [K in FieldName]: z.output<(typeof FIELDS)[K]> };

const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'];

export interface LoadConfigOptions {
  /**
   * `serve`: also require what serving needs (upstream, issuer, audience, one key,
   * the encryption key, GATE_INVITE_URL), reported together with every other problem.
   */
  serve?: boolean;
}

/**
 * Reads and validates the `GATE_*` (and `OTEL_EXPORTER_OTLP_ENDPOINT`) environment.
 * Pure: takes the environment as an argument and never reads `process.env`. One pass:
 * every variable and every cross-check runs, and all problems are thrown together.
 * A PEM or JWK in GATE_JWT_PUBLIC_KEY is parsed here, before anything touches the database.
 */
export function loadConfig(env: Record<string, string | undefined>, options: LoadConfigOptions = {}): Config {
  const problems: string[] = [];
  const e = {} as Record<FieldName, unknown>;
  const bad = new Set<FieldName>();
  for (const name of Object.keys(FIELDS) as FieldName[]) {
    const raw = env[name];
    // Empty (or blank) values count as unset, as in most twelve-factor tooling.
    const value = raw === undefined || raw.trim() === '' ? undefined : raw;
    const result = FIELDS[name].safeParse(value);
    if (result.success) e[name] = result.data;
    else {
      bad.add(name);
      // First issue per variable: one line each, and never the value (it may be a secret).
      problems.push(`${name}: ${result.error.issues[0]?.message ?? 'invalid'}`);
    }
  }
  const p = e as Parsed;

  // --- the JWT verification key: exactly one source, and a key that imports -----------
  const keySources = (['GATE_JWKS_URL', 'GATE_JWT_PUBLIC_KEY', 'GATE_JWT_SECRET'] as const).filter(
    (k) => (env[k] ?? '').trim() !== '',
  );
  if (keySources.length > 1) {
    problems.push(`${keySources.join(', ')}: set exactly one JWT verification key, not ${keySources.length}`);
  }
  let jwtKey: JwtKeyConfig | undefined;
  if (p.GATE_JWKS_URL !== undefined) jwtKey = { kind: 'jwks', url: p.GATE_JWKS_URL };
  else if (p.GATE_JWT_PUBLIC_KEY !== undefined) jwtKey = { kind: 'public-key', key: p.GATE_JWT_PUBLIC_KEY };
  else if (p.GATE_JWT_SECRET !== undefined) jwtKey = { kind: 'secret', secret: p.GATE_JWT_SECRET };

  let jwtAlgorithms: string[] | undefined;
  if (p.GATE_JWT_ALGORITHMS !== undefined) {
    jwtAlgorithms = p.GATE_JWT_ALGORITHMS.split(',').map((s) => s.trim()).filter(Boolean);
    const allowed = jwtKey?.kind === 'secret' ? HMAC_ALGORITHMS : ASYMMETRIC_ALGORITHMS;
    const unknown = jwtAlgorithms.filter((a) => !allowed.includes(a));
    if (jwtAlgorithms.length === 0 || unknown.length > 0) {
      problems.push(`GATE_JWT_ALGORITHMS: must list algorithms among ${allowed.join(', ')} for this key`);
      jwtAlgorithms = undefined;
    }
  }
  if (jwtKey?.kind === 'public-key') {
    const problem = publicKeyProblem(jwtKey.key, jwtAlgorithms);
    if (problem !== undefined) problems.push(`GATE_JWT_PUBLIC_KEY: ${problem}`);
  }

  let tokenEncryptionKey: Buffer | undefined;
  if (p.GATE_TOKEN_ENCRYPTION_KEY !== undefined) {
    const raw = p.GATE_TOKEN_ENCRYPTION_KEY.trim();
    const decoded = /^[A-Za-z0-9+/]+={0,2}$/.test(raw) ? Buffer.from(raw, 'base64') : undefined;
    if (decoded === undefined || decoded.length !== 32) {
      problems.push('GATE_TOKEN_ENCRYPTION_KEY: must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)');
    } else {
      tokenEncryptionKey = decoded;
    }
  }

  // --- cross-checks (each runs whenever the values it compares parsed) ----------------
  if (p.GATE_DATABASE_SYNC_URL !== undefined && p.GATE_DATABASE_URL !== undefined && !p.GATE_DATABASE_URL.startsWith('file:')) {
    problems.push('GATE_DATABASE_SYNC_URL: an embedded replica needs a file: GATE_DATABASE_URL');
  }
  if (p.GATE_AUTHZ_PORT !== undefined && p.GATE_PORT !== undefined && p.GATE_AUTHZ_PORT !== 0 && p.GATE_AUTHZ_PORT === p.GATE_PORT) {
    problems.push('GATE_AUTHZ_PORT: must differ from GATE_PORT (the forward-auth listener is never the public one)');
  }
  if (p.GATE_SMTP_URL !== undefined && p.GATE_MAIL_FROM === undefined && !bad.has('GATE_MAIL_FROM')) {
    problems.push('GATE_MAIL_FROM: required when GATE_SMTP_URL is set');
  }
  if (p.GATE_MAIL_FROM !== undefined && p.GATE_SMTP_URL === undefined && !bad.has('GATE_SMTP_URL')) {
    problems.push('GATE_SMTP_URL: required when GATE_MAIL_FROM is set');
  }
  if (p.GATE_WEBHOOK_URL !== undefined && p.GATE_WEBHOOK_SECRET === undefined && !bad.has('GATE_WEBHOOK_SECRET')) {
    problems.push('GATE_WEBHOOK_SECRET: required when GATE_WEBHOOK_URL is set');
  }
  if (p.GATE_WEBHOOK_SECRET !== undefined && p.GATE_WEBHOOK_URL === undefined && !bad.has('GATE_WEBHOOK_URL')) {
    problems.push('GATE_WEBHOOK_URL: required when GATE_WEBHOOK_SECRET is set');
  }

  // --- serve: what a running gateway needs ------------------------------------------
  if (options.serve) {
    const need = (name: FieldName, present: boolean) => {
      if (!present && !bad.has(name)) problems.push(`${name}: required for serve`);
    };
    need('GATE_UPSTREAM_URL', p.GATE_UPSTREAM_URL !== undefined);
    need('GATE_JWT_ISSUER', p.GATE_JWT_ISSUER !== undefined);
    need('GATE_JWT_AUDIENCE', p.GATE_JWT_AUDIENCE !== undefined);
    if (keySources.length === 0) {
      problems.push('GATE_JWKS_URL / GATE_JWT_PUBLIC_KEY / GATE_JWT_SECRET: exactly one is required for serve');
    }
    need('GATE_TOKEN_ENCRYPTION_KEY', (env['GATE_TOKEN_ENCRYPTION_KEY'] ?? '').trim() !== '');
    if (p.GATE_INVITE_URL === undefined && !bad.has('GATE_INVITE_URL')) {
      problems.push('GATE_INVITE_URL: required for serve (the public accept-link template, e.g. https://app.example.com/invites/{token})');
    }
  }

  if (problems.length > 0) throw new ConfigError(problems);

  return {
    host: p.GATE_HOST,
    port: p.GATE_PORT,
    upstreamUrl: p.GATE_UPSTREAM_URL !== undefined ? new URL(p.GATE_UPSTREAM_URL) : undefined,
    databaseUrl: p.GATE_DATABASE_URL,
    databaseAuthToken: p.GATE_DATABASE_AUTH_TOKEN,
    databaseSyncUrl: p.GATE_DATABASE_SYNC_URL,
    policyDir: p.GATE_POLICY_DIR,
    jwtIssuer: p.GATE_JWT_ISSUER,
    jwtAudience: p.GATE_JWT_AUDIENCE,
    jwtKey,
    jwtAlgorithms,
    tokenEncryptionKey,
    inviteUrl: p.GATE_INVITE_URL ?? DEV_INVITE_URL,
    inviteTtlDays: p.GATE_INVITE_TTL_DAYS,
    mode: p.GATE_MODE,
    upstreamTimeoutMs: p.GATE_UPSTREAM_TIMEOUT_MS,
    logLevel: p.GATE_LOG_LEVEL,
    authzPort: p.GATE_AUTHZ_PORT,
    authzHost: p.GATE_AUTHZ_HOST,
    shutdownGraceMs: p.GATE_SHUTDOWN_GRACE_MS,
    drainTimeoutMs: p.GATE_DRAIN_TIMEOUT_MS,
    dbWriteTimeoutMs: p.GATE_DB_WRITE_TIMEOUT_MS,
    logBufferBytes: p.GATE_LOG_BUFFER_BYTES,
    smtpUrl: p.GATE_SMTP_URL,
    mailFrom: p.GATE_MAIL_FROM,
    webhookUrl: p.GATE_WEBHOOK_URL,
    webhookSecret: p.GATE_WEBHOOK_SECRET,
    otlpEndpoint: p.OTEL_EXPORTER_OTLP_ENDPOINT,
  };
}

/** `loadConfig(env, { serve: true })`, typed as what `serve` needs. */
export function loadServeConfig(env: Record<string, string | undefined>): ServeConfig {
  const config = loadConfig(env, { serve: true });
  requireServeConfig(config);
  return config;
}

/** What `serve` additionally needs; reports every missing variable at once. */
export function requireServeConfig(config: Config): asserts config is ServeConfig {
  const missing: string[] = [];
  if (config.upstreamUrl === undefined) missing.push('GATE_UPSTREAM_URL: required for serve');
  if (config.jwtIssuer === undefined) missing.push('GATE_JWT_ISSUER: required for serve');
  if (config.jwtAudience === undefined) missing.push('GATE_JWT_AUDIENCE: required for serve');
  if (config.jwtKey === undefined) {
    missing.push('GATE_JWKS_URL / GATE_JWT_PUBLIC_KEY / GATE_JWT_SECRET: exactly one is required for serve');
  }
  if (config.tokenEncryptionKey === undefined) missing.push('GATE_TOKEN_ENCRYPTION_KEY: required for serve');
  if (missing.length > 0) throw new ConfigError(missing);
}

/** Which key types each asymmetric algorithm verifies with. */
function algorithmFits(alg: string, key: KeyObject): boolean {
  const type = key.asymmetricKeyType;
  if (/^RS\d+$/.test(alg)) return type === 'rsa';
  if (/^PS\d+$/.test(alg)) return type === 'rsa' || type === 'rsa-pss';
  if (alg === 'EdDSA') return type === 'ed25519' || type === 'ed448';
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (alg === 'ES256') return type === 'ec' && curve === 'prime256v1';
  if (alg === 'ES384') return type === 'ec' && curve === 'secp384r1';
  if (alg === 'ES512') return type === 'ec' && curve === 'secp521r1';
  return false;
}

/** The algorithm `createJwtVerifier` would pick for a key without GATE_JWT_ALGORITHMS. */
function defaultAlgorithm(key: KeyObject, jwkAlg: unknown): string | undefined {
  if (typeof jwkAlg === 'string') return jwkAlg;
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return 'RS256';
    case 'rsa-pss':
      return 'PS256';
    case 'ed25519':
      return 'EdDSA';
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      return curve === 'prime256v1' ? 'ES256' : curve === 'secp384r1' ? 'ES384' : curve === 'secp521r1' ? 'ES512' : undefined;
    }
    default:
      return undefined;
  }
}

/**
 * Why GATE_JWT_PUBLIC_KEY would not import as a verification key (undefined: it does).
 * Mirrors what `createJwtVerifier` accepts: an SPKI PEM ("BEGIN PUBLIC KEY") or a public JWK.
 * The message never quotes the key.
 */
function publicKeyProblem(text: string, algorithms: string[] | undefined): string | undefined {
  const trimmed = text.trim();
  let key: KeyObject;
  let jwkAlg: unknown;
  if (trimmed.startsWith('{')) {
    let jwk: Record<string, unknown>;
    try {
      jwk = JSON.parse(trimmed) as Record<string, unknown>;
    } catch {
      return 'is neither a PEM public key nor valid JSON for a JWK';
    }
    if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return 'a JWK must be a JSON object';
    if ('d' in jwk || jwk['kty'] === 'oct') return 'must be a public key, not a private or symmetric one';
    try {
      key = createPublicKey({ key: jwk as never, format: 'jwk' });
    } catch {
      return `is not a valid public JWK (kty ${JSON.stringify(jwk['kty'] ?? null)})`;
    }
    jwkAlg = jwk['alg'];
  } else {
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(trimmed)) return 'must be a public key, not a private one';
    if (!trimmed.startsWith('-----BEGIN PUBLIC KEY-----')) {
      return 'must be a PEM public key (-----BEGIN PUBLIC KEY-----, SPKI) or a public JWK';
    }
    try {
      key = createPublicKey({ key: trimmed, format: 'pem' });
    } catch {
      return 'is not a valid PEM public key (cannot decode it)';
    }
  }
  const alg = algorithms?.[0] ?? defaultAlgorithm(key, jwkAlg);
  if (alg === undefined) return `a ${key.asymmetricKeyType ?? 'unknown'} key is not supported; use RSA, EC (P-256/384/521) or Ed25519`;
  if (!ASYMMETRIC_ALGORITHMS.includes(alg)) return `algorithm ${alg} is not supported`;
  if (!algorithmFits(alg, key)) return `an ${key.asymmetricKeyType} key cannot verify ${alg}`;
  return undefined;
}
