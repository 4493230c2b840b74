/** One autocannon load and the helpers to summarize interleaved rounds (bench/run.ts, bench/ledger.ts). */
import autocannon from 'autocannon';

export interface LoadResult {
  rps: number;
  requests: number;
  errors: number;
  non2xx: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  samples: number;
}

export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * One autocannon run. Latencies are taken from autocannon's per-response event with
 * sub-millisecond resolution (its own histogram rounds to whole milliseconds).
 */
export function load(url: string, headers: Record<string, string>, opts: { durationS: number; connections: number; rate?: number }): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const latencies: number[] = [];
    const instance = autocannon(
      {
        url,
        headers,
        connections: opts.connections,
        duration: opts.durationS,
        pipelining: 1,
        ...(opts.rate ? { overallRate: opts.rate } : {}),
      },
      (err, result) => {
        if (err) return reject(err);
        const sorted = Float64Array.from(latencies).sort();
        resolve({
          rps: result.requests.total / opts.durationS,
          requests: result.requests.total,
          errors: result.errors + result.timeouts,
          non2xx: result.non2xx,
          p50_ms: percentile(sorted, 50),
          p90_ms: percentile(sorted, 90),
          p99_ms: percentile(sorted, 99),
          max_ms: sorted.length ? sorted[sorted.length - 1]! : NaN,
          samples: sorted.length,
        });
      },
    );
    instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => latencies.push(responseTime));
  });
}

export function check(name: string, r: LoadResult): LoadResult {
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`${name}: ${r.non2xx} non-2xx answers and ${r.errors} errors — the run measured failures`);
  return r;
}

export function median(results: LoadResult[], key: keyof LoadResult): number {
  const sorted = results.map((r) => r[key]).sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** The per-round results and their medians. */
export interface Measured extends LoadResult {
  rounds: number[];
}

export function summarize(results: LoadResult[], by: 'rps' | 'p50_ms'): Measured {
  // The round whose headline number is the median stands for the scenario (all its numbers agree).
  const m = median(results, by);
  const pick = results.find((r) => r[by] === m)!;
  return { ...pick, rounds: results.map((r) => r[by]) };
}
