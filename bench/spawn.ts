/**
 * Starting and stopping the benchmark servers (bench/servers.ts, and external ones such as
 * nginx or a Cerbos PDP), each in its own process group: the group's id is the server's
 * pid, so its CPU (bench/cpu.ts) counts every process it forks, and stopping it stops them all.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { build, type BuildOptions } from 'esbuild';
// @ts-expect-error: a plain .mjs module (shared with scripts/build.mjs), no type declarations
import { COMPILE_OPTIONS } from '../scripts/esbuild-options.mjs';

/**
 * bench/servers.ts compiled once per bench process, as `npm run build` compiles the gateway
 * (esbuild, one ESM bundle, dependencies external): every server is measured as plain
 * JavaScript under `node`, the way `packagento-gate serve` runs, not under the tsx loader
 * (whose loader thread, and the `__name` call it adds to every closure created, are not in
 * what ships). The source map lets bench/profile.ts name src/ files.
 */
export const SERVERS_BUNDLE = 'bench-results/build/servers.mjs';
let built: Promise<unknown> | undefined;
function buildServers(): Promise<unknown> {
  return (built ??= build({
    entryPoints: { servers: 'bench/servers.ts' },
    outdir: 'bench-results/build',
    outExtension: { '.js': '.mjs' },
    ...(COMPILE_OPTIONS as BuildOptions),
  }));
}

export interface BenchServer {
  url: string;
  /** The server's pid, which is also its process-group id. */
  pid: number;
  child: ChildProcess;
}

const started: ChildProcess[] = [];

/** Signals the whole group; a group that is already gone is not an error. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

/**
 * Starts `bench/servers.ts KIND ARGS…` (compiled) and resolves with the URL it prints. `nodeArgs` go
 * before the script (e.g. --cpu-prof); `env` is added to the environment (e.g. BENCH_STAGE_OFF).
 * Everything the server prints after its first line (the gateway's decision log) is drained and
 * discarded.
 */
export async function startServer(kind: string, args: string[] = [], nodeArgs: string[] = [], env: Record<string, string> = {}): Promise<BenchServer> {
  await buildServers();
  const child = spawn(process.execPath, [...nodeArgs, SERVERS_BUNDLE, kind, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, NODE_ENV: 'production', ...env },
    detached: true,
  });
  started.push(child);
  return new Promise((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error(`${kind} did not start within 60 s`)), 60_000);
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString();
      const nl = buffer.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      const { url, pid } = JSON.parse(buffer.slice(0, nl)) as { url: string; pid: number };
      child.stdout!.off('data', onData);
      child.stdout!.on('data', () => undefined);
      resolve({ url, pid, child });
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${kind} exited with ${code}`));
    });
  });
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port (bounded: `timeoutMs`). */
export async function waitForPort(port: number, timeoutMs: number, alive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (!alive()) throw new Error(`the process meant to listen on port ${port} exited`);
    if (Date.now() > deadline) throw new Error(`nothing listened on port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts an external server (nginx, a Cerbos PDP) in its own process group and resolves once it
 * listens on `port`. Its output goes to `onOutput` (default: dropped) so it cannot fill a pipe.
 */
export async function startProcess(
  name: string,
  command: string,
  args: string[],
  port: number,
  opts: { env?: Record<string, string>; cwd?: string; onOutput?: (chunk: string) => void } = {},
): Promise<BenchServer> {
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...(opts.env ?? {}) },
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    detached: true,
  });
  started.push(child);
  const sink = opts.onOutput ?? (() => undefined);
  // The last of its stderr, for the error when it exits before it listens.
  let stderrTail = '';
  child.stdout!.on('data', (c: Buffer) => sink(c.toString()));
  child.stderr!.on('data', (c: Buffer) => {
    stderrTail = (stderrTail + c.toString()).slice(-2000);
    sink(c.toString());
  });
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (err) => reject(new Error(`${name} could not start: ${err.message}`)));
    child.once('exit', (code, signal) => reject(new Error(`${name} exited (${code ?? signal}) before it listened${stderrTail ? `: ${stderrTail.trim()}` : ''}`)));
  });
  failed.catch(() => undefined);
  await Promise.race([waitForPort(port, 30_000, () => child.exitCode === null && child.signalCode === null), failed]);
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, child };
}

/** Stops a server's group with SIGTERM (so --cpu-prof can write its profile) and waits for the leader to exit. */
export async function stopServer(server: BenchServer): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  const exited = new Promise((r) => server.child.once('exit', r));
  signalGroup(server.child, 'SIGTERM');
  await exited;
}

/** Kills whatever is still running (on the way out, also after an error). */
export function killAll(): void {
  for (const c of started) signalGroup(c, 'SIGKILL');
}

// Servers run in their own groups, so a Ctrl-C at the terminal does not reach them: pass it on.
process.once('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    killAll();
    process.exit(130);
  });
}
