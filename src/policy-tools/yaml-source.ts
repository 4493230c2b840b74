import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';

/** A problem in a policy-folder or fixture file, at a file and (when known) a line. */
export class SourceError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly reason: string,
  ) {
    super(`${file}${line !== undefined ? `:${line}` : ''}: ${reason}`);
    this.name = 'SourceError';
  }
}

export type Path = readonly (string | number)[];

/** `cases[3].expect` */
export function formatPath(path: Path): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

type ErrorFactory = (file: string, line: number | undefined, reason: string) => Error;

/**
 * A parsed YAML file that remembers where everything is, so every message names the
 * file and line: syntax errors, schema (zod) failures, and the callers' own checks.
 * Fixtures and invariants both read their files through it.
 */
export class YamlSource {
  private constructor(
    readonly file: string,
    readonly doc: Document,
    private readonly lines: LineCounter,
    private readonly makeError: ErrorFactory,
  ) {}

  /** Parses YAML (duplicate keys refused); a syntax error is thrown naming the file and line. */
  static parse(text: string, file: string, makeError: ErrorFactory): YamlSource {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      throw makeError(file, lines.linePos(e.pos[0]).line, `invalid YAML: ${e.message.split('\n')[0]}`);
    }
    return new YamlSource(file, doc, lines, makeError);
  }

  /** The line of the node at `path`, or of its nearest ancestor that exists. */
  lineOf(path: Path): number | undefined {
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? this.doc.contents : this.doc.getIn(path.slice(0, n), true);
      const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
      if (range) return this.lines.linePos(range[0]).line;
    }
    return undefined;
  }

  /** The line of `key` itself in the mapping at `path` (a block list value starts on the next line). */
  keyLineOf(path: Path, key: string): number | undefined {
    const map = this.doc.getIn(path, true);
    if (isMap(map)) {
      const pair = map.items.find((p) => isScalar(p.key) && p.key.value === key);
      const range = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
      if (range) return this.lines.linePos(range[0]).line;
    }
    return this.lineOf([...path, key]);
  }

  /** An error at the line of `path`. */
  fail(path: Path, reason: string): Error {
    return this.makeError(this.file, this.lineOf(path), reason);
  }

  /** A schema failure as one message at its line; an unknown key is reported first (it explains the rest). */
  zodFailure(base: Path, error: z.ZodError): Error {
    // A misspelt `exepct` also leaves `expect` missing: the unknown key is the real problem.
    const issue = error.issues.find((i) => i.code === 'unrecognized_keys') ?? error.issues[0]!;
    const path: Path = [...base, ...(issue.path as (string | number)[])];
    const where = formatPath(path);
    if (issue.code === 'unrecognized_keys') {
      const key = issue.keys[0]!;
      return this.fail([...path, key], `${where ? `${where}: ` : ''}unknown key "${key}"`);
    }
    return this.fail(path, `${where ? `${where}: ` : ''}${issue.message}`);
  }
}
