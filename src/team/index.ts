import { guestHandlers } from './guests.ts';
import { inviteHandlers } from './invites/routes.ts';
import { memberHandlers } from './members.ts';
import { projectHandlers } from './projects.ts';
import { tokenHandlers } from './tokens.ts';
import type { NativeDeps, NativeHandlers } from './types.ts';
import { workspaceHandlers } from './workspaces.ts';

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
