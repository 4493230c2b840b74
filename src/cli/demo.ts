import { loadConfig } from '../config.ts';
import { demoInstructions, startDemo } from '../demo/demo.ts';
import { EXIT_OK, EXIT_USAGE, parseCommandArgs, type Command } from './command.ts';

export const demoCommand: Command = {
  name: 'demo',
  summary: 'run the gateway with a demo upstream, a seeded workspace and demo credentials',
  help: `Usage: packagento-gate demo [--data-dir DIR]

Starts, on embedded defaults:
  - a fresh embedded libSQL file (DIR/demo.db, default ./data),
  - the bundled demo upstream (licence JSON and a Composer repository with one package),
  - the gateway on GATE_HOST:GATE_PORT (default 127.0.0.1:8080),
  - a workspace seeded through the gateway's own API: one user per role, two projects,
    a project guest and a project token,
and prints demo-only JWTs with ready-to-paste curl and composer commands.
Decisions are logged to DIR/demo-decisions.jsonl. Stop with Ctrl-C.

The demo's credentials are public; \`serve\` refuses to start with them.
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(argv, { 'data-dir': { type: 'string' } });
    // The demo listens on loopback unless GATE_HOST says otherwise.
    const config = loadConfig({ GATE_HOST: '127.0.0.1', ...io.env });
    let demo;
    try {
      demo = await startDemo({
        host: config.host,
        port: config.port,
        dataDir: values['data-dir'] ?? './data',
        policyDir: config.policyDir,
        logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel,
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE') {
        io.stderr(`packagento-gate demo: GATE_PORT: ${config.host}:${config.port} is in use; set GATE_PORT to a free port\n`);
        return EXIT_USAGE;
      }
      throw err;
    }
    io.stdout(demoInstructions(demo));
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        void demo.close().then(resolve);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    return EXIT_OK;
  },
};
