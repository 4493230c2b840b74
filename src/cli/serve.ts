import { loadServeConfig, ConfigError } from '../config.ts';
import { PolicyError } from '../policy/bundle.ts';
import { PolicySourceError } from '../policy/source.ts';
import { refuseDemoCredentials } from '../demo/credentials.ts';
import { startGateway } from '../main.ts';
import { EXIT_OK, EXIT_USAGE, parseCommandArgs, type Command } from './command.ts';
import { isDatabaseError, databaseError, probeDatabase } from './database.ts';

export const serveCommand: Command = {
  name: 'serve',
  summary: 'run the gateway (configured by GATE_* environment variables)',
  help: `Usage: packagento-gate serve

Runs the gateway: migrates the database, loads and verifies the policy folder,
and listens on GATE_HOST:GATE_PORT. Configuration is environment variables
(see README "Configuration"); a bad value stops the start with a message that
names the variable (exit 2). An invalid policy stops the start (exit 2).

SIGHUP, or a change in the policy folder, reloads the policy; an invalid policy
on reload is rejected and the last good one stays in force.
SIGTERM / SIGINT: readyz answers 503 at once, requests are still served for
GATE_SHUTDOWN_GRACE_MS, then the listener closes and in-flight requests get
GATE_DRAIN_TIMEOUT_MS before they are cut; the logs are flushed, exit 0.
`,
  async run(argv, io) {
    parseCommandArgs(argv, {});
    const config = loadServeConfig(io.env);
    await refuseDemoCredentials(config);
    // The database is reached before anything else starts, so an unreachable one is a one-line
    // configuration error naming GATE_DATABASE_URL (serve creates a new embedded file).
    await probeDatabase(config);
    let gateway;
    try {
      gateway = await startGateway(config, { watchPolicy: true, handleSignals: true });
    } catch (err) {
      if (err instanceof PolicyError || err instanceof PolicySourceError) {
        io.stderr(`packagento-gate serve: invalid policy: ${err.message}\n`);
        return EXIT_USAGE;
      }
      if (err instanceof ConfigError) throw err;
      if (isDatabaseError(err)) throw databaseError(err, config);
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE' || code === 'EACCES') {
        io.stderr(`packagento-gate serve: GATE_PORT: cannot listen on ${config.host}:${config.port} (${code})\n`);
        return EXIT_USAGE;
      }
      io.stderr(`packagento-gate serve: cannot start: ${(err as Error).message}\n`);
      return 1;
    }
    gateway.logger.info('listening', { url: gateway.url, upstream: config.upstreamUrl.origin, mode: config.mode });
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        gateway.logger.info('shutting down', { signal });
        process.off('SIGTERM', onTerm);
        process.off('SIGINT', onInt);
        void gateway.shutdown().then(resolve);
      };
      const onTerm = () => stop('SIGTERM');
      const onInt = () => stop('SIGINT');
      process.on('SIGTERM', onTerm);
      process.on('SIGINT', onInt);
    });
    return EXIT_OK;
  },
};
