import type { Command } from './command.ts';
import { demoCommand } from './demo.ts';
import { migrateCommand } from './migrate.ts';
import { checkCommand } from './check.ts';
import { diffCommand } from './diff.ts';
import { explainCommand } from './explain.ts';
import { matrixCommand } from './matrix.ts';
import { testCommand } from './test.ts';
import { serveCommand } from './serve.ts';
import { transferOwnershipCommand } from './support.ts';
import { outboxListCommand, outboxRetryCommand } from './outbox.ts';

/** Every CLI command, in the order `--help` lists them. */
export function commands(): Command[] {
  return [serveCommand, demoCommand, migrateCommand, testCommand, checkCommand, matrixCommand, diffCommand, explainCommand, transferOwnershipCommand, outboxListCommand, outboxRetryCommand];
}
