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
  inviteUrl: string;
  inviteTtlDays: number;
  mode: 'enforce' | 'shadow';
  upstreamTimeoutMs: number;
  logLevel: LogLevel;
  /** `smtp://` or `smtps://` URL for invite emails (may carry credentials: never log it). */
  smtpUrl: string | undefined;
  mailFrom: string | undefined;
  /** Where change events are POSTed (Standard Webhooks). */
  webhookUrl: string | undefined;
  /** `whsec_…` */
  webhookSecret: string | undefined;
}

/** Thrown by `loadConfig`; `problems` names every bad variable at once. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'ConfigError';
  }
}

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v));

const httpUrl = z.string().refine((v) => {
  try {
    const u = new URL(v);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.username === '' && u.password === '';
  } catch {
    return false;
  }
}, 'must be an http(s) URL without credentials');

const intInRange = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be between ${min} and ${max}`);

const envSchema = z.object({
  GATE_HOST: z.string().min(1).default('0.0.0.0'),
  GATE_PORT: intInRange(0, 65535).default(8080),
  GATE_UPSTREAM_URL: httpUrl.optional(),
  GATE_DATABASE_URL: z
    .string()
    .regex(/^(file:|libsql:\/\/|https?:\/\/|wss?:\/\/)/, 'must start with file:, libsql://, http(s):// or ws(s)://')
    .default('file:./data/gate.db'),
  GATE_DATABASE_AUTH_TOKEN: optionalString,
  GATE_DATABASE_SYNC_URL: optionalString,
  GATE_POLICY_DIR: z.string().min(1).default('./policies'),
  GATE_JWT_ISSUER: optionalString,
  GATE_JWT_AUDIENCE: optionalString,
  // Keys fetched over plain HTTP could be swapped in transit: HTTPS, except on loopback.
  GATE_JWKS_URL: httpUrl
    .refine((v) => {
      const u = new URL(v);
      return u.protocol === 'https:' || ['localhost', '127.0.0.1', '[::1]'].includes(u.hostname);
    }, 'must be an https:// URL (http:// only on loopback)')
    .optional(),
  GATE_JWT_PUBLIC_KEY: optionalString,
  GATE_JWT_SECRET: optionalString.refine(
    (v) => v === undefined || Buffer.byteLength(v, 'utf8') >= 32,
    'must be at least 32 bytes',
  ),
  GATE_JWT_ALGORITHMS: optionalString,
  GATE_TOKEN_ENCRYPTION_KEY: optionalString,
  GATE_INVITE_URL: z
    .string()
    .refine((v) => v.includes('{token}'), 'must contain {token}')
    .default('http://localhost:8080/v1/invites/{token}'),
  GATE_INVITE_TTL_DAYS: intInRange(1, 365).default(14),
  GATE_MODE: z.enum(['enforce', 'shadow']).default('enforce'),
  GATE_UPSTREAM_TIMEOUT_MS: intInRange(1, 600_000).default(30_000),
  GATE_LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  // May carry credentials (smtp://user:pass@host): messages never echo the value.
  GATE_SMTP_URL: z
    .string()
    .refine((v) => {
      try {
        const u = new URL(v);
        return (u.protocol === 'smtp:' || u.protocol === 'smtps:') && u.hostname !== '';
      } catch {
        return false;
      }
    }, 'must be an smtp:// or smtps:// URL with a host')
    .optional(),
  GATE_MAIL_FROM: z
    .string()
    .refine((v) => {
      const m = /^[^<>]*<([^<>]+)>\s*$/.exec(v);
      return /^[^\s@<>]+@[^\s@<>]+$/.test(m ? m[1]! : v.trim());
    }, 'must be an email address, e.g. "Packagento <noreply@example.com>"')
    .optional(),
  GATE_WEBHOOK_URL: httpUrl.optional(),
  GATE_WEBHOOK_SECRET: z
    .string()
    .refine((v) => {
      const m = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(v);
      if (!m) return false;
      const n = Buffer.from(m[1]!, 'base64').length;
      return n >= 24 && n <= 64;
    }, 'must be whsec_ followed by 24 to 64 base64-encoded random bytes (e.g. `echo whsec_$(openssl rand -base64 32)`)')
    .optional(),
});

const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

/**
 * Reads and validates the `GATE_*` environment. Pure: takes the environment as
 * an argument, reports every bad variable at once, and never reads `process.env`.
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const problems: string[] = [];
  // Empty values count as unset, as in most twelve-factor tooling.
  const cleaned: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (k.startsWith('GATE_') && v !== undefined && v !== '') cleaned[k] = v;

  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push(`${String(issue.path[0] ?? 'environment')}: ${issue.message}`);
    }
    throw new ConfigError(problems);
  }
  const e = parsed.data;

  const keySources = [
    e.GATE_JWKS_URL !== undefined ? 'GATE_JWKS_URL' : undefined,
    e.GATE_JWT_PUBLIC_KEY !== undefined ? 'GATE_JWT_PUBLIC_KEY' : undefined,
    e.GATE_JWT_SECRET !== undefined ? 'GATE_JWT_SECRET' : undefined,
  ].filter((s): s is string => s !== undefined);
  if (keySources.length > 1) {
    problems.push(`${keySources.join(', ')}: set exactly one JWT verification key, not ${keySources.length}`);
  }
  let jwtKey: JwtKeyConfig | undefined;
  if (e.GATE_JWKS_URL !== undefined) jwtKey = { kind: 'jwks', url: e.GATE_JWKS_URL };
  else if (e.GATE_JWT_PUBLIC_KEY !== undefined) jwtKey = { kind: 'public-key', key: e.GATE_JWT_PUBLIC_KEY };
  else if (e.GATE_JWT_SECRET !== undefined) jwtKey = { kind: 'secret', secret: e.GATE_JWT_SECRET };

  let jwtAlgorithms: string[] | undefined;
  if (e.GATE_JWT_ALGORITHMS !== undefined) {
    jwtAlgorithms = e.GATE_JWT_ALGORITHMS.split(',').map((s) => s.trim()).filter(Boolean);
    const allowed = jwtKey?.kind === 'secret' ? ['HS256', 'HS384', 'HS512'] : ASYMMETRIC_ALGORITHMS;
    const bad = jwtAlgorithms.filter((a) => !allowed.includes(a));
    if (jwtAlgorithms.length === 0 || bad.length > 0) {
      problems.push(`GATE_JWT_ALGORITHMS: must list algorithms among ${allowed.join(', ')} for this key`);
    }
  }

  let tokenEncryptionKey: Buffer | undefined;
  if (e.GATE_TOKEN_ENCRYPTION_KEY !== undefined) {
    const raw = e.GATE_TOKEN_ENCRYPTION_KEY.trim();
    const decoded = /^[A-Za-z0-9+/]+={0,2}$/.test(raw) ? Buffer.from(raw, 'base64') : undefined;
    if (decoded === undefined || decoded.length !== 32) {
      problems.push('GATE_TOKEN_ENCRYPTION_KEY: must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)');
    } else {
      tokenEncryptionKey = decoded;
    }
  }

  if (e.GATE_DATABASE_SYNC_URL !== undefined && !e.GATE_DATABASE_URL.startsWith('file:')) {
    problems.push('GATE_DATABASE_SYNC_URL: an embedded replica needs a file: GATE_DATABASE_URL');
  }

  if (e.GATE_SMTP_URL !== undefined && e.GATE_MAIL_FROM === undefined) problems.push('GATE_MAIL_FROM: required with GATE_SMTP_URL');
  if (e.GATE_WEBHOOK_URL !== undefined && e.GATE_WEBHOOK_SECRET === undefined) problems.push('GATE_WEBHOOK_SECRET: required with GATE_WEBHOOK_URL');

  if (problems.length > 0) throw new ConfigError(problems);

  return {
    host: e.GATE_HOST,
    port: e.GATE_PORT,
    upstreamUrl: e.GATE_UPSTREAM_URL !== undefined ? new URL(e.GATE_UPSTREAM_URL) : undefined,
    databaseUrl: e.GATE_DATABASE_URL,
    databaseAuthToken: e.GATE_DATABASE_AUTH_TOKEN,
    databaseSyncUrl: e.GATE_DATABASE_SYNC_URL,
    policyDir: e.GATE_POLICY_DIR,
    jwtIssuer: e.GATE_JWT_ISSUER,
    jwtAudience: e.GATE_JWT_AUDIENCE,
    jwtKey,
    jwtAlgorithms,
    tokenEncryptionKey,
    inviteUrl: e.GATE_INVITE_URL,
    inviteTtlDays: e.GATE_INVITE_TTL_DAYS,
    mode: e.GATE_MODE,
    upstreamTimeoutMs: e.GATE_UPSTREAM_TIMEOUT_MS,
    logLevel: e.GATE_LOG_LEVEL,
    smtpUrl: e.GATE_SMTP_URL,
    mailFrom: e.GATE_MAIL_FROM,
    webhookUrl: e.GATE_WEBHOOK_URL,
    webhookSecret: e.GATE_WEBHOOK_SECRET,
  };
}

/** What `serve` additionally needs; reports every missing variable at once. */
export function requireServeConfig(config: Config): asserts config is Config & {
  upstreamUrl: URL;
  jwtIssuer: string;
  jwtAudience: string;
  jwtKey: JwtKeyConfig;
  tokenEncryptionKey: Buffer;
} {
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
