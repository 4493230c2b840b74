/**
 * CPU time of whole process groups, from /proc (Linux only): user + system time of every
 * live process whose group is one of `groups`, plus what their reaped children used
 * (cutime + cstime). Each bench server is its own group (bench/spawn.ts), so this counts a
 * server's workers, helper processes and threads, and nothing else.
 */
import { readdir, readFile } from 'node:fs/promises';

/** USER_HZ: /proc reports times in clock ticks of 1/100 s on Linux. */
const TICK_US = 1e6 / 100;

/** Fields after the `(comm)` of /proc/<pid>/stat; comm may hold spaces and parentheses. */
function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** CPU µs used so far by every process of each of the given process groups, in one pass over /proc. */
export async function groupsCpuUs(groups: readonly number[]): Promise<Map<number, number>> {
  const out = new Map<number, number>(groups.map((g) => [g, 0]));
  for (const entry of await readdir('/proc')) {
    if (entry.charCodeAt(0) < 48 || entry.charCodeAt(0) > 57) continue;
    let stat: string;
    try {
      stat = await readFile(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    const f = statFields(stat);
    // f[0] state, f[1] ppid, f[2] pgrp, … f[11] utime, f[12] stime, f[13] cutime, f[14] cstime
    const group = Number(f[2]);
    const sofar = out.get(group);
    if (sofar === undefined) continue;
    out.set(group, sofar + (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * TICK_US);
  }
  return out;
}

/** CPU µs of one process (its threads included), without scanning /proc. */
export async function processCpuUs(pid: number): Promise<number> {
  const f = statFields(await readFile(`/proc/${pid}/stat`, 'utf8'));
  return (Number(f[11]) + Number(f[12])) * TICK_US;
}
