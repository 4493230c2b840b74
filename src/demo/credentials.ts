import type { Config } from '../config.ts';
import { ConfigError } from '../config.ts';
import { openDb } from '../db/client.ts';

/**
 * Demo-only credentials. They are public (printed by `npm run demo`), so `serve`
 * refuses to start with any of them, or on a database the demo seeded.
 */
export const DEMO_JWT_SECRET = 'packagento-demo-only-jwt-secret-do-not-use-in-production';
export const DEMO_ISSUER = 'https://demo.packagento.invalid';
export const DEMO_AUDIENCE = 'packagento-gate-demo';
export const DEMO_TOKEN_ENCRYPTION_KEY = Buffer.from('packagento-demo-only-aes-key-32b', 'utf8');

export async function refuseDemoCredentials(config: Config): Promise<void> {
  const problems: string[] = [];
  if (config.jwtKey?.kind === 'secret' && config.jwtKey.secret === DEMO_JWT_SECRET) {
    problems.push('GATE_JWT_SECRET: this is the public demo secret; generate your own');
  }
  if (config.jwtIssuer === DEMO_ISSUER) problems.push('GATE_JWT_ISSUER: this is the demo issuer');
  if (config.tokenEncryptionKey?.equals(DEMO_TOKEN_ENCRYPTION_KEY)) {
    problems.push('GATE_TOKEN_ENCRYPTION_KEY: this is the public demo key; generate your own');
  }
  if (problems.length === 0) {
    const db = await openDb({ url: config.databaseUrl, authToken: config.databaseAuthToken, syncUrl: config.databaseSyncUrl });
    try {
      const seeded = await db
        .execute("SELECT value FROM gate_meta WHERE key = 'demo'")
        .then((r) => r.rows.length > 0)
        .catch(() => false);
      if (seeded) problems.push('GATE_DATABASE_URL: this database was seeded by the demo (its credentials are public)');
    } finally {
      db.close();
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
}
