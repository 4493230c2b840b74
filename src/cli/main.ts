import { ConfigError } from '../config.ts';
import { EXIT_FAILED, EXIT_USAGE, processIo, UsageError, type Command, type CommandIo } from './command.ts';
import { commands } from './commands.ts';
import { VERSION } from './version.ts';

const USAGE = (list: Command[]) => `Usage: packagento-gate <command> [options]

Commands:
${list.map((c) => `  ${c.name.padEnd(28)}${c.summary}`).join('\n')}

Run \`packagento-gate <command> --help\` for a command's options; \`packagento-gate --version\` for the version.
Exit codes: 0 success, 1 a failed check or test, 2 bad usage or configuration.
`;

/** The CLI entry point: returns the exit code (never calls process.exit). */
export async function main(argv: string[], io: CommandIo = processIo()): Promise<number> {
  const list = commands();
  const [first, second, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    io.stdout(USAGE(list));
    return first === undefined ? EXIT_USAGE : 0;
  }
  if (first === '--version' || first === '-V' || first === 'version') {
    io.stdout(`packagento-gate ${VERSION}\n`);
    return 0;
  }
  // Two-word commands (support transfer-ownership) first.
  let command = list.find((c) => c.name === `${first} ${second}`);
  let args = rest;
  if (!command) {
    command = list.find((c) => c.name === first);
    args = second === undefined ? [] : [second, ...rest];
  }
  if (!command) {
    const group = list.filter((c) => c.name.startsWith(`${first} `));
    if (group.length > 0 && (second === undefined || second === '--help' || second === '-h')) {
      io.stdout(`Usage: packagento-gate ${first} <subcommand>\n\n${group.map((c) => `  ${c.name.padEnd(28)}${c.summary}`).join('\n')}\n`);
      return second === undefined ? EXIT_USAGE : 0;
    }
    io.stderr(`packagento-gate: unknown command "${[first, second].filter(Boolean).join(' ')}" (see --help)\n`);
    return EXIT_USAGE;
  }
  if (args.includes('--help') || args.includes('-h')) {
    io.stdout(command.help.endsWith('\n') ? command.help : command.help + '\n');
    return 0;
  }
  try {
    return await command.run(args, io);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      io.stderr(`packagento-gate ${command.name}: ${oneLine(err.message)}\n`);
      return EXIT_USAGE;
    }
    // Anything else is a bug, not the operator's doing: still one line, never a stack trace
    // (unless asked for with GATE_LOG_LEVEL=debug).
    const e = err as { name?: unknown; message?: unknown; stack?: unknown; cause?: { message?: unknown } } | undefined;
    const message = typeof e?.message === 'string' ? e.message : String(err);
    const cause = typeof e?.cause?.message === 'string' ? ` (${e.cause.message})` : '';
    io.stderr(`packagento-gate ${command.name}: unexpected error: ${oneLine(message + cause)}\n`);
    if (io.env['GATE_LOG_LEVEL'] === 'debug' && typeof e?.stack === 'string') io.stderr(e.stack + '\n');
    return EXIT_FAILED;
  }
}

/** Messages are printed on one line: a multi-line reason is folded. */
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
