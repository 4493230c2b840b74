import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

/**
 * The OpenAPI contract, checked on every native answer the test suite receives through
 * the shared helpers (`call()` in api.ts, `request()` of a test gateway): the answer's
 * status must be declared for its operation and its body must validate against the
 * schema the gateway's own /_gate/openapi.json gives for it. Not a hand-kept list: any
 * test that talks to a native route is a contract test too.
 */
type Media = { schema: object };
type Operation = { responses: Record<string, { $ref?: string; content?: Record<string, Media> }> };
type Doc = { paths: Record<string, Record<string, Operation>>; components: { responses: Record<string, { content: Record<string, Media> }> } };

interface Contract {
  doc: Doc;
  patterns: { pattern: string; segments: string[]; literals: number }[];
  validators: Map<string, ValidateFunction>;
}

const ajv = new Ajv2020({ strict: false, allErrors: true });
(addFormats as unknown as (a: Ajv2020) => void)(ajv);
const contracts = new Map<string, Promise<Contract | undefined>>();

async function contractOf(baseUrl: string): Promise<Contract | undefined> {
  let c = contracts.get(baseUrl);
  if (!c) {
    c = (async () => {
      const res = await fetch(`${baseUrl}/_gate/openapi.json`);
      if (res.status !== 200) return undefined;
      const doc = (await res.json()) as Doc;
      const patterns = Object.keys(doc.paths).map((pattern) => {
        const segments = pattern.split('/').slice(1);
        return { pattern, segments, literals: segments.filter((s) => !s.startsWith('{')).length };
      });
      return { doc, patterns, validators: new Map() };
    })().catch(() => undefined);
    contracts.set(baseUrl, c);
  }
  return c;
}

/** The documented operation a request path answers to: the match with the most literal segments. */
function operationFor(c: Contract, method: string, path: string): { pattern: string; op: Operation } | undefined {
  const segments = path.split('?')[0]!.split('/').slice(1);
  let best: { pattern: string; op: Operation; literals: number } | undefined;
  for (const p of c.patterns) {
    if (p.segments.length !== segments.length) continue;
    if (!p.segments.every((s, i) => (s.startsWith('{') ? segments[i] !== '' : s === segments[i]))) continue;
    const op = c.doc.paths[p.pattern]![method.toLowerCase()];
    if (op && (!best || p.literals > best.literals)) best = { pattern: p.pattern, op, literals: p.literals };
  }
  return best;
}

/** Is this request answered by a documented native operation (so its answer is checked)? */
export async function isDocumented(baseUrl: string, method: string, path: string): Promise<boolean> {
  if (method === 'HEAD' || path.startsWith('/_gate/')) return false;
  const c = await contractOf(baseUrl);
  return c !== undefined && operationFor(c, method, path) !== undefined;
}

/** Throws when a native answer does not match the OpenAPI document; other answers pass untouched. */
export async function checkContract(baseUrl: string, method: string, path: string, res: { status: number; contentType: string | null; text: string }): Promise<void> {
  if (method === 'HEAD' || path.startsWith('/_gate/')) return;
  const c = await contractOf(baseUrl);
  if (!c) return;
  const found = operationFor(c, method, path);
  if (!found) return;
  const where = `${method} ${found.pattern} → ${res.status}`;
  const declared = found.op.responses[String(res.status)];
  if (!declared) throw new Error(`OpenAPI contract: ${where} is not a documented status`);
  const content = declared.$ref ? c.doc.components.responses[declared.$ref.split('/').at(-1)!]?.content : declared.content;
  const type = (res.contentType ?? '').split(';')[0]!.trim();
  const media = content?.[type];
  if (!media) throw new Error(`OpenAPI contract: ${where} answered ${type || 'no content type'}, which is not documented`);
  const key = `${where} ${type}`;
  let validate = c.validators.get(key);
  if (!validate) {
    validate = ajv.compile({ ...media.schema, components: c.doc.components });
    c.validators.set(key, validate);
  }
  let body: unknown;
  try {
    body = JSON.parse(res.text);
  } catch {
    throw new Error(`OpenAPI contract: ${where} answered a body that is not JSON`);
  }
  if (!validate(body)) {
    throw new Error(`OpenAPI contract: ${where}: ${ajv.errorsText(validate.errors)} in ${res.text.slice(0, 500)}`);
  }
}
