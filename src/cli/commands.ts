import type { Command } from './command.ts';
import { demoCommand } from './demo.ts';
import { migrateCommand } from './migrate.ts';
import { serveCommand } from './serve.ts';
import { transferOwnershipCommand } from './support.ts';

/** Every CLI command, in the order `--help` lists them. */
export function commands(): Command[] {
  return [serveCommand, demoCommand, migrateCommand, transferOwnershipCommand];
}
