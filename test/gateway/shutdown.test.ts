import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { ACME, startTestGateway } from '../helpers/gateway.ts';
import { userJwt } from '../helpers/jwt.ts';

describe('shutdown', () => {
  it('drains: an in-flight request on a keep-alive connection completes, then close returns promptly', async () => {
    const g = await startTestGateway({ world: ACME });
    g.upstream.respond = (_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
        res.end('ok');
      }, 300);
    };
    const agent = new http.Agent({ keepAlive: true });
    try {
      const jwt = await userJwt('vic');
      const inFlight = new Promise<{ status: number; connection: string | undefined }>((resolve) => {
        http.get(g.gw.url + '/v1/workspaces/acme/licences', { agent, headers: { authorization: `Bearer ${jwt}` } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection }));
        });
      });
      await new Promise((r) => setTimeout(r, 100));
      const started = Date.now();
      const closed = g.gw.close(5_000).then(() => Date.now() - started);
      expect(await inFlight).toEqual({ status: 200, connection: 'close' });
      expect(await closed).toBeLessThan(3_000);
    } finally {
      agent.destroy();
      await g.upstream.close();
    }
  });
});
