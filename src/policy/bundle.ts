import { newEnforcer, newModelFromString, StringAdapter, type Enforcer } from 'casbin';
import { isAction } from '../domain.ts';
import { parseRouteMap, RouteMap, RouteMapError } from './route-map.ts';
import { DecisionTable } from './decision-table.ts';
import { policyRevision, type PolicySource } from './source.ts';

export const MODEL_FILE = 'model.conf';
export const POLICY_FILE = 'policy.csv';
export const ROUTES_FILE = 'routes.txt';

/** A policy that failed to load, with the file and line where that is known. */
export class PolicyError extends Error {
  constructor(
    message: string,
    readonly file?: string,
    readonly line?: number,
  ) {
    super(file ? `${file}${line ? `:${line}` : ''}: ${message}` : message);
    this.name = 'PolicyError';
  }
}

/** One line of policy.csv, parsed. */
export interface PolicyLine {
  line: number;
  ptype: string;
  values: string[];
  text: string;
}

/** Everything one policy revision decides with. Immutable once built; swapped whole on reload. */
export interface PolicyBundle {
  revision: string;
  source: PolicySource;
  /** Stock node-casbin, kept for `explain` and verification; never asked on the hot path. */
  enforcer: Enforcer;
  table: DecisionTable;
  routes: RouteMap;
  policyLines: PolicyLine[];
}

function requireFile(source: PolicySource, name: string): string {
  const text = source.files.get(name);
  if (text === undefined) throw new PolicyError(`missing ${name} in ${source.origin}`, name);
  return text;
}

/** Parses policy.csv the way Casbin reads it (comma-separated, trimmed, `#` comments). */
export function parsePolicyLines(text: string): PolicyLine[] {
  const lines: PolicyLine[] = [];
  text.split('\n').forEach((raw, i) => {
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const values = trimmed.split(',').map((v) => v.trim());
    lines.push({ line: i + 1, ptype: values[0]!, values: values.slice(1), text: trimmed });
  });
  return lines;
}

function validatePolicyLines(lines: PolicyLine[]): void {
  const seen = new Map<string, number>();
  for (const l of lines) {
    const arity = l.ptype === 'p' ? 3 : l.ptype === 'g' || l.ptype === 'g2' ? 2 : undefined;
    if (arity === undefined) throw new PolicyError(`unknown line type "${l.ptype}" (expected p, g or g2)`, POLICY_FILE, l.line);
    if (l.values.length !== arity || l.values.some((v) => v === '')) {
      throw new PolicyError(`a ${l.ptype} line takes ${arity} values, got "${l.text}"`, POLICY_FILE, l.line);
    }
    // A misspelt action would silently deny; refuse it instead.
    if (l.ptype === 'p' && !isAction(l.values[1]!)) {
      throw new PolicyError(`unknown action "${l.values[1]}"`, POLICY_FILE, l.line);
    }
    const key = [l.ptype, ...l.values].join(',');
    if (seen.has(key)) throw new PolicyError(`duplicate of line ${seen.get(key)}`, POLICY_FILE, l.line);
    seen.set(key, l.line);
  }
}

/** Builds a stock node-casbin enforcer from the bundle's model and policy text. */
export async function createEnforcer(modelText: string, policyText: string): Promise<Enforcer> {
  let model;
  try {
    model = newModelFromString(modelText);
  } catch (err) {
    throw new PolicyError(`invalid Casbin model: ${(err as Error).message}`, MODEL_FILE);
  }
  for (const [sec, key] of [
    ['r', 'r'],
    ['p', 'p'],
    ['m', 'm'],
  ] as const) {
    if (!model.model.get(sec)?.get(key)) throw new PolicyError(`model has no [${sec}] ${key} definition`, MODEL_FILE);
  }
  try {
    return await newEnforcer(model, new StringAdapter(policyText.trim() === '' ? '#' : policyText));
  } catch (err) {
    throw new PolicyError(`Casbin could not load the policy: ${(err as Error).message}`, POLICY_FILE);
  }
}

/**
 * Checks every cell of the compiled table (through the same lookup the gateway
 * uses) against `enforce`; throws PolicyError naming the first cell that differs.
 */
export function verifyDecisionTable(table: DecisionTable, enforce: (subject: string, action: string, target: string) => boolean): void {
  for (const { subject, action, target } of table.cells()) {
    if (table.allows([subject], action, target) !== enforce(subject, action, target)) {
      throw new PolicyError(`decision table disagrees with Casbin on (${subject}, ${action}, ${target})`);
    }
  }
}

/**
 * Loads a policy revision: parses the model, policy and route map, compiles the
 * decision table, and verifies every cell against a second, fresh stock enforcer.
 * Throws PolicyError on anything invalid; the caller keeps its last good bundle.
 */
export async function buildPolicyBundle(source: PolicySource): Promise<PolicyBundle> {
  const modelText = requireFile(source, MODEL_FILE);
  const policyText = requireFile(source, POLICY_FILE);
  const routesText = requireFile(source, ROUTES_FILE);

  const policyLines = parsePolicyLines(policyText);
  validatePolicyLines(policyLines);

  let routes: RouteMap;
  try {
    routes = new RouteMap(parseRouteMap(routesText, ROUTES_FILE));
  } catch (err) {
    if (err instanceof RouteMapError) throw new PolicyError(err.message.replace(/^[^:]+:\d+: /, ''), ROUTES_FILE, err.line);
    throw err;
  }

  const enforcer = await createEnforcer(modelText, policyText);
  const enforce = (s: string, a: string, t: string): boolean => {
    try {
      return enforcer.enforceSync(s, a, t);
    } catch (err) {
      throw new PolicyError(`Casbin could not evaluate (${s}, ${a}, ${t}): ${(err as Error).message}`, MODEL_FILE);
    }
  };
  const table = DecisionTable.build(enforce);

  // Verification: the table is what the gateway decides with, so it must agree with
  // an independent stock enforcer on every cell, including out-of-domain targets.
  const verifier = await createEnforcer(modelText, policyText);
  verifyDecisionTable(table, (s, a, t) => verifier.enforceSync(s, a, t));

  return { revision: policyRevision(source), source, enforcer, table, routes, policyLines };
}
