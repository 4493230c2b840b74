import type { Action } from '../domain.ts';
import type { Target } from '../policy/decision-table.ts';
import type { World } from './world.ts';
import { SourceError } from './yaml-source.ts';

/** What a case expects: a decision (`deny` = 403 or 404 for requests), or an exact status. */
export type Expect = 'allow' | 'deny' | 400 | 401 | 403 | 404 | 405;

interface CaseBase {
  /** The fixture file, as given on the command line (relative to the working directory). */
  file: string;
  line: number;
  name: string;
  /** A user or token of the world; undefined = no credentials. */
  as: string | undefined;
  expect: Expect;
}

export interface ActionCase extends CaseBase {
  kind: 'action';
  action: Action;
  workspace: string;
  project: string | undefined;
  target: Target;
}

export interface HttpCase extends CaseBase {
  kind: 'http';
  method: string;
  /** The request-target, exactly as written. */
  requestTarget: string;
  body: Record<string, unknown> | undefined;
  headers: [string, string][];
}

export type FixtureCase = ActionCase | HttpCase;

export interface Fixture {
  file: string;
  name: string;
  world: World;
  cases: FixtureCase[];
}

/** A fixture that cannot be loaded; the message starts with `file:line:`. */
export class FixtureError extends SourceError {
  constructor(file: string, line: number | undefined, reason: string) {
    super(file, line, reason);
    this.name = 'FixtureError';
  }
}

