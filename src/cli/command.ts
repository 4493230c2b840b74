import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Exit codes shared by every command (CONTRACT §2). */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export interface CommandIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
  cwd: string;
}

export const processIo = (): CommandIo => ({
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
  cwd: process.cwd(),
});

export interface Command {
  name: string;
  summary: string;
  help: string;
  run(argv: string[], io: CommandIo): Promise<number>;
}

/** Raised for bad usage or configuration: the CLI prints the one-line reason and exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** node:util parseArgs with errors turned into UsageError. */
export function parseCommandArgs<T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: T,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]!);
  }
}

/** `--policies DIR`, else GATE_POLICY_DIR, else ./policies. */
export function policyDirFrom(value: string | undefined, env: Record<string, string | undefined>): string {
  return value ?? (env['GATE_POLICY_DIR'] || './policies');
}
