import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The bundled demo upstream: what Packagento's own services would answer behind
 * the gateway. Licence JSON, refund and cancel endpoints, and a Composer
 * repository (packages.json, p2 metadata, one real package archive).
 *
 * It trusts the gateway's x-packagento-* identity headers, as a real upstream
 * behind the gateway does, and echoes them so the demo shows what arrived.
 */

export const DEMO_PACKAGE = { name: 'acme/hello', version: '1.0.0' } as const;

const ARCHIVE = readFileSync(new URL('./packages/acme-hello-1.0.0.zip', import.meta.url));
const ARCHIVE_SHA1 = createHash('sha1').update(ARCHIVE).digest('hex');

function identity(req: IncomingMessage) {
  const h = (name: string) => {
    const v = req.headers[name];
    return typeof v === 'string' ? v : null;
  };
  return {
    principal: h('x-packagento-principal'),
    workspace: h('x-packagento-workspace'),
    project: h('x-packagento-project'),
    roles: h('x-packagento-roles'),
    action: h('x-packagento-action'),
    decision_id: h('x-packagento-decision-id'),
  };
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** The base URL the client used to reach the gateway (from the gateway's forwarding headers). */
function publicBase(req: IncomingMessage): string {
  const proto = req.headers['x-forwarded-proto'] === 'https' ? 'https' : 'http';
  const host = String(req.headers['x-forwarded-host'] ?? req.headers.host ?? 'localhost');
  return `${proto}://${host}`;
}

function licences(workspace: string, project?: string) {
  const all = [
    { id: 'lic_1001', package: 'acme/hello', plan: 'team', project_id: project ?? 'any', status: 'active' },
    { id: 'lic_1002', package: 'acme/billing-tools', plan: 'solo', project_id: project ?? 'any', status: 'active' },
  ];
  return { workspace_id: workspace, ...(project ? { project_id: project } : {}), licences: all };
}

export function handleDemoUpstream(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://upstream.invalid');
  const parts = url.pathname.split('/').slice(1);
  const who = identity(req);

  // Composer repository.
  if (parts[0] === 'repo') {
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: 'method not allowed' });
    const base = `${publicBase(req)}/repo`;
    if (parts.length === 2 && parts[1] === 'packages.json') {
      return send(res, 200, {
        'metadata-url': '/repo/p2/%package%.json',
        'available-packages': [DEMO_PACKAGE.name],
      });
    }
    if (parts.length === 4 && parts[1] === 'p2' && `${parts[2]}/${parts[3]}` === `${DEMO_PACKAGE.name}.json`) {
      return send(res, 200, {
        packages: {
          [DEMO_PACKAGE.name]: [
            {
              name: DEMO_PACKAGE.name,
              version: DEMO_PACKAGE.version,
              version_normalized: '1.0.0.0',
              type: 'library',
              license: ['MIT'],
              autoload: { 'psr-4': { 'Acme\\Hello\\': 'src/' } },
              require: { php: '>=7.4' },
              dist: { type: 'zip', url: `${base}/dist/acme/hello/1.0.0.zip`, shasum: ARCHIVE_SHA1, reference: ARCHIVE_SHA1 },
            },
          ],
        },
      });
    }
    if (parts.length === 5 && parts[1] === 'dist' && parts[2] === 'acme' && parts[3] === 'hello' && parts[4] === '1.0.0.zip') {
      res.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(ARCHIVE.length) });
      res.end(req.method === 'HEAD' ? undefined : ARCHIVE);
      return;
    }
    return send(res, 404, { error: 'no such package file' });
  }

  // Licences and billing.
  if (parts[0] === 'v1' && parts[1] === 'workspaces' && parts[2]) {
    const ws = parts[2];
    if (req.method === 'GET' && parts.length === 4 && parts[3] === 'licences') return send(res, 200, { ...licences(ws), seen_by_upstream: who });
    if (req.method === 'GET' && parts.length === 6 && parts[3] === 'projects' && parts[5] === 'licences') {
      return send(res, 200, { ...licences(ws, parts[4]), seen_by_upstream: who });
    }
    if (req.method === 'POST' && parts.length === 6 && parts[3] === 'licences' && parts[5] === 'refund-requests') {
      req.resume();
      return send(res, 202, { refund_request: { licence_id: parts[4], status: 'received' }, seen_by_upstream: who });
    }
    if (req.method === 'POST' && parts.length === 6 && parts[3] === 'subscriptions' && parts[5] === 'cancel') {
      req.resume();
      return send(res, 200, { subscription: { id: parts[4], status: 'cancelled' }, seen_by_upstream: who });
    }
  }
  send(res, 404, { error: 'not found upstream' });
}

export interface DemoUpstream {
  url: string;
  close(): Promise<void>;
}

export async function startDemoUpstream(port = 0, host = '127.0.0.1'): Promise<DemoUpstream> {
  const server = http.createServer(handleDemoUpstream);
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
