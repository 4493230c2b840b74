import type { NativeHandlers } from '../app.ts';
import type { SecretBox } from '../crypto/secret-box.ts';
import type { Db } from '../db/client.ts';
import { guestHandlers } from './guests.ts';
import { inviteHandlers } from './invites/routes.ts';
import { memberHandlers } from './members.ts';
import { projectHandlers } from './projects.ts';
import { tokenHandlers } from './tokens.ts';
import { workspaceHandlers } from './workspaces.ts';

/** What the gateway's own API needs. */
export interface NativeDeps {
  db: Db;
  secretBox: SecretBox;
  inviteUrl: string;
  inviteTtlDays: number;
  now: () => number;
}

/** Every native route's handler, keyed by route id (`METHOD PATTERN` in policies/routes.txt). */
export function createNativeHandlers(deps: NativeDeps): NativeHandlers {
  const all: NativeHandlers = {};
  for (const group of [workspaceHandlers, memberHandlers, inviteHandlers, projectHandlers, guestHandlers, tokenHandlers]) {
    for (const [id, handler] of Object.entries(group(deps))) {
      if (all[id]) throw new Error(`two handlers for ${id}`);
      all[id] = handler;
    }
  }
  return all;
}
