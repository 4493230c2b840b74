import { userInfo } from 'node:os';
import { loadConfig } from '../config.ts';
import { WORKSPACE_ROLES, isWorkspaceRole } from '../domain.ts';
import { migrate } from '../db/migrations.ts';
import { transferOwnership } from '../team/ownership-transfer.ts';
import { EXIT_FAILED, EXIT_OK, parseCommandArgs, UsageError, type Command } from './command.ts';
import { asDatabaseError, openDatabaseForCommand } from './database.ts';

export const transferOwnershipCommand: Command = {
  name: 'support transfer-ownership',
  summary: 'support staff: make a member the owner of a workspace',
  help: `Usage: packagento-gate support transfer-ownership --workspace WS --to USER [options]

Support-assisted ownership transfer (never a self-service API call). Makes member
USER an owner of workspace WS, then gives the previous owners the role of
--previous-owners (default admin). One database transaction; the workspace never
has zero owners. Recorded in the audit log as actor "support:<name>".

Options:
  --workspace WS          the workspace id
  --to USER               the user id (JWT sub) of an existing member
  --previous-owners ROLE  what the previous owners become: owner (keep them), admin,
                          developer, billing or viewer (default: admin)
  --actor NAME            who is running this, for the audit log (default: the OS user)
  --reason TEXT           a ticket number or reason, for the audit log
Uses GATE_DATABASE_URL (default file:./data/gate.db); it must exist (this command never
creates a database: a mistyped path is an error, not an empty workspace list).
Exit codes: 0 done, 1 refused (not a member, no such workspace, already owner),
2 bad usage, bad configuration or an unreachable database.
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(argv, {
      workspace: { type: 'string' },
      to: { type: 'string' },
      'previous-owners': { type: 'string' },
      actor: { type: 'string' },
      reason: { type: 'string' },
    });
    if (!values.workspace) throw new UsageError('--workspace is required');
    if (!values.to) throw new UsageError('--to is required');
    const previous = values['previous-owners'] ?? 'admin';
    if (!isWorkspaceRole(previous)) throw new UsageError(`--previous-owners must be one of ${WORKSPACE_ROLES.join(', ')}`);
    const config = loadConfig(io.env);
    const db = await openDatabaseForCommand(config, { create: false });
    try {
      let result;
      try {
        await migrate(db);
        result = await transferOwnership(db, {
          workspaceId: values.workspace,
          toUserId: values.to,
          previousOwnersBecome: previous,
          actor: values.actor ?? safeUser(),
          reason: values.reason,
          now: Date.now(),
        });
      } catch (err) {
        throw asDatabaseError(err, config);
      }
      if (!result.ok) {
        io.stderr(`packagento-gate support transfer-ownership: ${result.message}\n`);
        return EXIT_FAILED;
      }
      io.stdout(
        `${result.newOwner} is now an owner of ${values.workspace}` +
          (result.previousOwners.length > 0 && previous !== 'owner' ? `; ${result.previousOwners.join(', ')} now ${previous}` : '') +
          '\n',
      );
      return EXIT_OK;
    } finally {
      db.close();
    }
  },
};

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
