/** Starting and stopping the benchmark servers (bench/servers.ts), each in its own process. */
import { spawn, type ChildProcess } from 'node:child_process';

export interface BenchServer {
  url: string;
  pid: number;
  child: ChildProcess;
}

const started: ChildProcess[] = [];

/**
 * Starts `bench/servers.ts KIND ARGS…` and resolves with the URL it prints. `nodeArgs` go
 * before the script (e.g. --cpu-prof). Everything the server prints after its first line
 * (the gateway's decision log) is drained and discarded.
 */
export function startServer(kind: string, args: string[] = [], nodeArgs: string[] = []): Promise<BenchServer> {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', 'bench/servers.ts', kind, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, NODE_ENV: 'production' },
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

/** Stops a server with SIGTERM (so --cpu-prof can write its profile) and waits for it to exit. */
export async function stopServer(server: BenchServer): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  const exited = new Promise((r) => server.child.once('exit', r));
  server.child.kill('SIGTERM');
  await exited;
}

/** Kills whatever is still running (on the way out, also after an error). */
export function killAll(): void {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}
