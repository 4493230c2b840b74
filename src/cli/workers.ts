import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { UsageError } from './command.ts';

/** The most workers `serve --workers` starts (a typo such as 1000 must not fork-bomb the host). */
export const MAX_WORKERS = 64;

/** `--workers N` (1–64), default the number of cores this process may use. */
export function workerCount(value: string | undefined): number {
  if (value === undefined) return Math.min(availableParallelism(), MAX_WORKERS);
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > MAX_WORKERS) {
    throw new UsageError(`--workers: must be a whole number from 1 to ${MAX_WORKERS}`);
  }
  return Number(value);
}

export interface PrimaryLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface PrimaryOptions {
  workers: number;
  log: PrimaryLog;
  /** After SIGTERM, how long workers get to finish their own shutdown before they are killed. */
  stopTimeoutMs: number;
  /** Replacements allowed per minute before the primary gives up (a crash loop). */
  maxRestartsPerMinute?: number;
}

/**
 * The cluster primary of `serve --workers N`: it never listens or decides itself.
 *
 * - Forks one worker and waits until it listens (it migrates the database and loads the
 *   policy, so a bad policy or configuration fails once, with its exit code), then the rest.
 *   Every worker opens the same database: an access change made through one is honoured by
 *   all on the next request, as with separate instances (CONTRACT §3).
 * - Relays SIGHUP (each worker reloads and verifies the policy itself) and SIGTERM/SIGINT
 *   (each worker runs its own shutdown: readyz 503, grace, drain), then exits when all have.
 * - Replaces a worker that dies unexpectedly, unless workers keep dying (a crash loop).
 *
 * Workers share the listening sockets through node:cluster and write their decision lines
 * to the inherited stdout in whole-line chunks no larger than PIPE_BUF, so lines from two
 * workers never interleave mid-line.
 */
export function runPrimary(options: PrimaryOptions): Promise<number> {
  const { log } = options;
  const maxRestarts = options.maxRestartsPerMinute ?? 10;
  const restarts: number[] = [];
  let stopping = false;
  let started = 0;
  let exitCode = 0;

  return new Promise<number>((resolve) => {
    const live = () => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());
    const finishIfDone = () => {
      if (live().length === 0) {
        process.off('SIGHUP', onHup);
        process.off('SIGTERM', onTerm);
        process.off('SIGINT', onInt);
        resolve(exitCode);
      }
    };
    const stop = (signal: NodeJS.Signals, code = exitCode) => {
      if (stopping) return;
      stopping = true;
      exitCode = code;
      log.info('stopping workers', { signal, workers: live().length });
      for (const w of live()) w.process.kill(signal === 'SIGINT' ? 'SIGTERM' : signal);
      // Whatever has not finished its own drain by then is cut.
      setTimeout(() => {
        for (const w of live()) w.process.kill('SIGKILL');
      }, options.stopTimeoutMs).unref();
      finishIfDone();
    };
    const onHup = () => {
      log.info('reloading the policy in every worker', { workers: live().length });
      for (const w of live()) w.process.kill('SIGHUP');
    };
    const onTerm = () => stop('SIGTERM');
    const onInt = () => stop('SIGINT');
    process.on('SIGHUP', onHup);
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);

    const fork = () => {
      const worker = cluster.fork();
      let listening = false;
      worker.once('listening', () => {
        listening = true;
        if (++started === 1) for (let i = 1; i < options.workers; i++) fork();
        if (started === options.workers) log.info('all workers listening', { workers: options.workers });
      });
      worker.once('exit', (code, signal) => {
        if (stopping) return finishIfDone();
        if (!listening && started === 0) {
          // The first worker could not start (configuration, policy, port): that is the answer.
          log.error('the first worker could not start', { code, signal });
          return stop('SIGTERM', code ?? 1);
        }
        const now = Date.now();
        while (restarts.length > 0 && now - restarts[0]! > 60_000) restarts.shift();
        if (restarts.length >= maxRestarts) {
          log.error('workers keep dying; stopping', { code, signal, restarts_last_minute: restarts.length });
          return stop('SIGTERM', 1);
        }
        restarts.push(now);
        log.error('a worker died; starting a replacement', { pid: worker.process.pid, code, signal });
        fork();
      });
    };
    fork();
  });
}
