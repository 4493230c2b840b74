import type { NativeHandlers } from '../app.ts';
import type { PolicyBundle } from '../authz/policy-bundle.ts';
import type { SecretBox } from '../crypto/secret-box.ts';
import type { Db } from '../db/client.ts';

/** What the gateway's own API needs. */
export interface NativeDeps {
  db: Db;
  secretBox: SecretBox;
  inviteUrl: string;
  inviteTtlDays: number;
  policy: () => PolicyBundle;
  now: () => number;
  /** Base URL Composer reaches the repository at (for auth.json snippets). */
  repositoryUrl: URL;
}

/** Every native route's handler, keyed by route id. */
export function createNativeHandlers(_deps: NativeDeps): NativeHandlers {
  return {};
}
