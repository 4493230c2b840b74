import { loadConfig } from '../config.ts';
import { openDb } from '../db/client.ts';
import { migrate } from '../db/migrations.ts';
import { EXIT_OK, parseCommandArgs, type Command } from './command.ts';

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'apply database migrations (GATE_DATABASE_URL)',
  help: `Usage: packagento-gate migrate

Applies pending schema migrations to GATE_DATABASE_URL (default file:./data/gate.db)
and prints the schema version. \`serve\` also migrates on start; run this ahead of a
rollout to migrate once, before new instances start.
`,
  async run(argv, io) {
    parseCommandArgs(argv, {});
    const config = loadConfig(io.env);
    const db = await openDb({ url: config.databaseUrl, authToken: config.databaseAuthToken, syncUrl: config.databaseSyncUrl });
    try {
      const result = await migrate(db);
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
