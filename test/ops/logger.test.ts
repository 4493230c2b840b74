import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { createLogger, errorFields } from '../../src/log/logger.ts';

describe('operational log (pino format)', () => {
  it('writes pino JSON lines: numeric level, epoch time, pid, hostname, msg, the fields', () => {
    const lines: string[] = [];
    const before = Date.now();
    const log = createLogger('info', (l) => lines.push(l));
    log.debug('hidden');
    log.info('listening', { url: 'http://127.0.0.1:1' });
    log.warn('upstream failed', { kind: 'timeout' });
    log.error('decision failed', errorFields(new Error('boom', { cause: new Error('ECONNREFUSED') })));
    expect(lines).toHaveLength(3);
    const [info, warn, error] = lines.map((l) => JSON.parse(l));
    expect(info).toEqual({ level: 30, time: expect.any(Number), pid: process.pid, hostname: hostname(), msg: 'listening', url: 'http://127.0.0.1:1' });
    expect(info.time).toBeGreaterThanOrEqual(before);
    expect(info.time).toBeLessThanOrEqual(Date.now());
    expect(warn).toMatchObject({ level: 40, msg: 'upstream failed', kind: 'timeout' });
    expect(error).toMatchObject({ level: 50, msg: 'decision failed', err: { type: 'Error', message: 'boom', cause: 'ECONNREFUSED' } });
    expect(error.err.stack.split('\n').length).toBeLessThanOrEqual(6);
    for (const l of lines) expect(l).not.toContain('\n');
  });

  it('honours the level and mixes in per-line fields', () => {
    const lines: string[] = [];
    let trace = 'a'.repeat(32);
    const log = createLogger('warn', (l) => lines.push(l), { mixin: () => ({ trace_id: trace }) });
    log.info('hidden');
    log.warn('one');
    trace = 'b'.repeat(32);
    log.error('two');
    expect(lines.map((l) => [JSON.parse(l).msg, JSON.parse(l).trace_id])).toEqual([
      ['one', 'a'.repeat(32)],
      ['two', 'b'.repeat(32)],
    ]);
  });

  it('a thrown non-Error is logged as its string', () => {
    expect(errorFields('nope')).toEqual({ err: { type: 'string', message: 'nope' } });
  });
});
