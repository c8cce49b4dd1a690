// Start-up: how long the agent takes from its start until every one of N veth interfaces is counted, fresh and adopted.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { ATTACH_CONCURRENCY } from '../../src/attach/reconciler.js';
import { agentArgs, spawnAgent, TestBpffs } from '../fixtures/agent-process.js';
import { Cleanups } from '../fixtures/cleanups.js';
import type { LogLine } from '../fixtures/json-log.js';

/** The target: this many interfaces counted (both directions) within this long of the agent's start. */
export const STARTUP_TARGET = { interfaces: 100, ms: 1000 };
export const STARTUP_COUNTS = [32, 100, 200] as const;

export interface StartupRun {
  /** Process start to the `starting carnx` line: Node and the agent's modules loading, no BPF yet. */
  bootMs: number;
  /** `starting carnx` to the last interface counted in every direction (the `started` line). */
  attachMs: number;
  /** Process start to every interface counted: what a user waits for. */
  totalMs: number;
  /** CPU the agent used until then, user + system (the verifier runs as system time in its threads). */
  cpuMs: number;
}

export interface StartupResult {
  interfaces: number;
  directions: number;
  /** Why this count has no numbers (the agent did not start in time, or refused interfaces). */
  error?: string;
  /** No pins yet: every interface is loaded (verifier), linked and pinned. */
  fresh?: StartupRun;
  /** A restart on the pins the fresh run kept: every interface is adopted (no verifier run but the start-up check). */
  adopted?: StartupRun;
  /** Attaches the agent runs at once on this machine. */
  concurrency: number;
}

export interface StartupOptions {
  counts?: readonly number[];
  /** Another build's dist/src/main.js (to measure before and after a change on the same machine). */
  main?: string;
}

/** N veth pairs: host sides `<prefix><i>` in the root namespace (what the agent counts), peers in one namespace. */
class VethFan {
  readonly ns: string;
  readonly prefix: string;

  constructor(
    readonly count: number,
    tag: string,
  ) {
    this.ns = `carnx-bench-${process.pid}-${tag}`;
    this.prefix = `cxb${process.pid % 10000}${tag}x`;
  }

  names(): string[] {
    return Array.from({ length: this.count }, (_, i) => `${this.prefix}${i}`);
  }

  create(): this {
    execFileSync('ip', ['netns', 'add', this.ns]);
    // One `ip -batch` for all pairs: an ip process per pair would take longer than what is measured.
    const lines = this.names().flatMap((name, i) => [
      `link add ${name} type veth peer name p${i} netns ${this.ns}`,
      `link set ${name} up`,
    ]);
    execFileSync('ip', ['-batch', '-'], { input: `${lines.join('\n')}\n` });
    return this;
  }

  /** Deleting the namespace deletes every peer, and with it each pair and whatever is attached to it. */
  destroy(): void {
    try {
      execFileSync('ip', ['netns', 'del', this.ns]);
    } catch {
      // already gone
    }
  }
}

/** user + system time of a process so far, in ms (fields 14 and 15 of /proc/<pid>/stat, in clock ticks of 10 ms). */
function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function startOnce(
  cleanups: Cleanups,
  bpffs: TestBpffs,
  fan: VethFan,
  options: StartupOptions,
  extra: string[],
): Promise<StartupRun> {
  // Info, not the tests' debug (the last flag wins): libbpf's debug lines for hundreds of loads would be measured too.
  const args = agentArgs(bpffs, `${fan.prefix}*`, [...extra, '--log-level', 'info']);
  const spawnedAt = Date.now();
  const agent = spawnAgent(cleanups, args, { main: options.main });
  // Generous: one interface after the other on a busy 2-core machine took over 2 minutes for 200.
  const timeout = 600_000;
  let starting: LogLine;
  let started: LogLine;
  try {
    starting = await agent.waitForMsg('starting carnx', {}, timeout);
    started = await agent.waitForMsg('started', {}, timeout);
  } catch (err) {
    // Not the agent's whole log (hundreds of lines): the reason, and how far it got.
    const attached = agent.lines.filter((l) => l.msg === 'attached').length;
    throw new Error(`${(err as Error).message.split('\n')[0]} (${attached} attachments made)`);
  }
  const cpuMs = cpuMsOf(agent.child.pid as number);
  const counted = (started.interfaces as string[] | undefined) ?? [];
  const refused = Object.keys((started.refused as Record<string, string> | undefined) ?? {});
  if (counted.length !== fan.count || refused.length > 0) {
    throw new Error(`${counted.length} of ${fan.count} interfaces counted; refused: ${refused.join(', ')}`);
  }
  const at = (line: LogLine) => Date.parse(String(line.time));
  const exit = await agent.stop('SIGTERM');
  if (exit.code !== 0) throw new Error(`the agent exited with ${exit.code}:\n${agent.describe()}`);
  return {
    bootMs: at(starting) - spawnedAt,
    attachMs: at(started) - at(starting),
    totalMs: at(started) - spawnedAt,
    cpuMs,
  };
}

/** One count: a fresh start that keeps its pins on exit, then a start that adopts them; everything removed after. */
async function benchCount(count: number, options: StartupOptions): Promise<StartupResult> {
  const cleanups = new Cleanups();
  try {
    const fan = cleanups.add(new VethFan(count, String(count)), (f) => f.destroy()).create();
    const bpffs = cleanups.add(new TestBpffs(`bench-startup-${count}`), (b) => b.destroy());
    const fresh = await startOnce(cleanups, bpffs, fan, options, ['--xdp-keep-attached-on-exit']);
    const adopted = await startOnce(cleanups, bpffs, fan, options, []);
    return { interfaces: count, directions: 2, fresh, adopted, concurrency: ATTACH_CONCURRENCY };
  } catch (err) {
    return { interfaces: count, directions: 2, error: (err as Error).message, concurrency: ATTACH_CONCURRENCY };
  } finally {
    await cleanups.run();
  }
}

/** Runs the agent on 32, 100 and 200 veths (receive and transmit each), one count after the other. */
export async function benchStartup(options: StartupOptions = {}): Promise<StartupResult[]> {
  const results: StartupResult[] = [];
  for (const count of options.counts ?? STARTUP_COUNTS) results.push(await benchCount(count, options));
  return results;
}

/** Prints one row per count; true when the target count (if measured) met the target time from a fresh start. */
export function printStartup(results: StartupResult[]): boolean {
  console.log('\nstart-up: agent start to every interface counted (receive + transmit), fresh and adopted');
  console.log('interfaces | fresh: total (boot + attach), agent CPU | adopted: total (boot + attach), agent CPU');
  let ok = true;
  for (const r of results) {
    const row = (run: StartupRun | undefined) =>
      (run ? `${run.totalMs} ms (${run.bootMs} + ${run.attachMs}), ${run.cpuMs} ms CPU` : '-').padEnd(40);
    const error = r.error ? `  failed: ${r.error}` : '';
    console.log(`${String(r.interfaces).padStart(10)} | ${row(r.fresh)} | ${row(r.adopted)}${error}`);
    const tooSlow = r.fresh === undefined || r.fresh.totalMs > STARTUP_TARGET.ms;
    if (r.interfaces === STARTUP_TARGET.interfaces && tooSlow) ok = false;
  }
  const target = results.find((r) => r.interfaces === STARTUP_TARGET.interfaces);
  if (target) {
    console.log(
      `target: ${STARTUP_TARGET.interfaces} interfaces within ${STARTUP_TARGET.ms} ms of start: ` +
        `${target.fresh?.totalMs ?? '-'} ms, ${ok ? 'met' : 'NOT met'} (${target.concurrency} attaches at once)`,
    );
  }
  return ok;
}
