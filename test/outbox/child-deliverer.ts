// A gateway's outbox deliverer in its own process, for the multi-gateway and kill -9 tests.
// Env: DB_URL, HOOK_URL, HOOK_SECRET, HOLDER, LEASE_MS. Prints "ready" once started; on
// SIGTERM stops cleanly and prints its delivery counts as one JSON line.
import { openDb } from '../../src/db/client.ts';
import { createOutboxDeliverer } from '../../src/outbox/deliverer.ts';
import { createWebhookChannel } from '../../src/outbox/webhook.ts';

const env = process.env;
const db = await openDb({ url: env['DB_URL']! });
const deliverer = createOutboxDeliverer({
  db,
  channels: [createWebhookChannel({ url: env['HOOK_URL']!, secret: env['HOOK_SECRET']!, timeoutMs: 2000 })],
  pollMs: 20,
  leaseMs: Number(env['LEASE_MS'] ?? 1000),
  holderId: env['HOLDER']!,
  backoff: { baseMs: 20, capMs: 100 },
});
deliverer.start();
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  void deliverer.stop().then(() => {
    process.stdout.write(JSON.stringify({ holder: deliverer.holderId, deliveries: deliverer.deliveries() }) + '\n');
    db.close();
  });
});
