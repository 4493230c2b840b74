import { loadConfig } from '../config.ts';
import { migrate } from '../db/migrations.ts';
import { EXIT_OK, parseCommandArgs, type Command } from './command.ts';
import { asDatabaseError, openDatabaseForCommand } from './database.ts';

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'apply database migrations (GATE_DATABASE_URL)',
  help: `Usage: packagento-gate migrate [--create]

Applies pending schema migrations to GATE_DATABASE_URL (default file:./data/gate.db)
and prints the schema version. \`serve\` also migrates on start; run this ahead of a
rollout to migrate once, before new instances start.

  --create   create the embedded database file if it does not exist (without it, a
             missing file is an error: a mistyped path must not make an empty database)

Exit codes: 0 migrated or current, 2 bad configuration or an unreachable database.
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(argv, { create: { type: 'boolean' } });
    const config = loadConfig(io.env);
    const db = await openDatabaseForCommand(config, { create: values.create === true });
    try {
      let result;
      try {
        result = await migrate(db);
      } catch (err) {
        throw asDatabaseError(err, config);
      }
      io.stdout(
        result.applied.length > 0
          ? `applied migrations ${result.applied.join(', ')}; schema version ${result.current}\n`
          : `schema is current (version ${result.current})\n`,
      );
      return EXIT_OK;
    } finally {
      db.close();
    }
  },
};
