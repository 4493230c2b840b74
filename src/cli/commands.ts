import type { Command } from './command.ts';
import { migrateCommand } from './migrate.ts';
import { serveCommand } from './serve.ts';

/** Every CLI command, in the order `--help` lists them. */
export function commands(): Command[] {
  return [serveCommand, migrateCommand];
}
