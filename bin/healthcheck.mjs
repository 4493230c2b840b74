#!/usr/bin/env node
// Container healthcheck: GET /_gate/healthz on the address the gateway listens on
// (GATE_HOST / GATE_PORT, as the gateway reads them), so it keeps working when GATE_HOST
// is one specific interface. A wildcard address is checked on loopback. Exit 0 healthy,
// 1 otherwise, within 2 s.
import { request } from 'node:http';

const rawHost = (process.env.GATE_HOST ?? '').trim() || '0.0.0.0';
const port = Number((process.env.GATE_PORT ?? '').trim() || 8080);
const host = rawHost === '0.0.0.0' ? '127.0.0.1' : rawHost === '::' || rawHost === '[::]' ? '::1' : rawHost.replace(/^\[|\]$/g, '');

const req = request({ host, port, path: '/_gate/healthz', method: 'GET', timeout: 2000, headers: { connection: 'close' } }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', (err) => {
  process.stderr.write(`healthcheck: ${host}:${port}: ${err.message}\n`);
  process.exit(1);
});
req.end();
