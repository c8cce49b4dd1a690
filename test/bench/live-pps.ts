// Benchmark: packets per second a veth receives from a live generator, with carnx in each receive hook against none.
import { ipv4, udp } from '../fixtures/frames.js';
import { LiveGenerator } from './live-generator.js';
import { BenchPair } from './live-pair.js';
import { type Attached, BASELINE, type Holding, LIVE_HOOKS, type LiveHook, attachHook } from './live-hooks.js';
import { type Ratio, type RoundValue, median, pct, ratioOf, rotated } from './live-ratios.js';

export const ROUNDS = 5;
/** Sends per attachment (their median is the round's value) and frames per send (about a second here). */
export const SENDS = 3;
export const FRAMES = 1_000_000;
const WARM_UP_FRAMES = 100_000;
/** Native XDP's target: this share of the packets per second without a program. */
export const TARGET_RATIO = 0.97;
const TARGET_HOOK = 'carnx XDP native';
/** 60 bytes, to another MAC than the receiver's: the stack drops it at once (PACKET_OTHERHOST), after every hook. */
const FRAME = ipv4('IPv4 UDP', udp()).bytes;

export interface PpsRun extends RoundValue {
  /** Packets per second of each send; `value` is their median. */
  sends: number[];
  /** Over the sends: frames sent, what rx_packets grew by, and what carnx counted (null without carnx). */
  frames: { sent: number; received: string; counted: string | null };
}

export interface PpsRow extends Ratio {
  hook: string;
  runs: PpsRun[];
}

export interface PpsResult {
  setup: string;
  rounds: number;
  sends: number;
  frames: number;
  rows: PpsRow[];
  target: { hook: string; ratio: number; measured: number; met: boolean };
}

async function measure(
  hook: LiveHook,
  pair: BenchPair,
  gen: LiveGenerator,
  round: number,
  holding: Holding,
): Promise<PpsRun> {
  const attached: Attached = await attachHook(hook, pair.receiver, holding);
  try {
    const from = pair.ifindex(pair.sender);
    gen.send(from, FRAME, WARM_UP_FRAMES);
    const before = { counted: attached.packets(), rx: pair.rxPackets() };
    const sends: number[] = [];
    for (let i = 0; i < SENDS; i++) {
      const rx = pair.rxPackets();
      const seconds = gen.send(from, FRAME, FRAMES);
      sends.push(Number(pair.rxPackets() - rx) / seconds);
    }
    const after = { counted: attached.packets(), rx: pair.rxPackets() };
    const counted = before.counted === null || after.counted === null ? null : String(after.counted - before.counted);
    const frames = { sent: SENDS * FRAMES, received: String(after.rx - before.rx), counted };
    return { round, value: median(sends), sends, frames };
  } finally {
    await attached.detach();
  }
}

/** Measures every hook once per round, the order rotating each round, so all see the same load. */
export async function benchLivePps(rounds = ROUNDS): Promise<PpsResult> {
  const pair = new BenchPair();
  const holding: Holding = {};
  const onSignal = (signal: NodeJS.Signals) => {
    holding.current?.abort();
    pair.destroy();
    process.kill(process.pid, signal);
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  let gen: LiveGenerator | undefined;
  try {
    pair.create();
    gen = new LiveGenerator();
    const runs = new Map<string, PpsRun[]>(LIVE_HOOKS.map((h) => [h.name, []]));
    for (let round = 0; round < rounds; round++) {
      for (const hook of rotated(LIVE_HOOKS, round))
        runs.get(hook.name)?.push(await measure(hook, pair, gen, round, holding));
    }
    const baseline = runs.get(BASELINE.name) ?? [];
    const rows = LIVE_HOOKS.map((hook): PpsRow => {
      const own = runs.get(hook.name) ?? [];
      return { hook: hook.name, runs: own, ...ratioOf(own, baseline) };
    });
    const measured = rows.find((r) => r.hook === TARGET_HOOK)?.ratio ?? Number.NaN;
    return {
      setup:
        `veth pair, ${FRAME.length}-byte IPv4 UDP frames to a foreign MAC (dropped by the stack after the hook), ` +
        'sent by BPF_PROG_TEST_RUN in live-frames mode (XDP_TX from the other end), receiver GRO on; ' +
        'the agent itself attached per hook (--xdp-mode), receive and transmit',
      rounds,
      sends: SENDS,
      frames: FRAMES,
      rows,
      target: { hook: TARGET_HOOK, ratio: TARGET_RATIO, measured, met: measured >= TARGET_RATIO },
    };
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    gen?.close();
    pair.destroy();
  }
}

/** Prints the table and native XDP's verdict, with the miss in percentage points. Returns whether it was met. */
export function printLivePps(result: PpsResult): boolean {
  console.log(
    `\nPackets/s received through a veth, per hook (${result.rounds} rounds x ${result.sends} sends of ` +
      `${result.frames.toExponential()} frames, interleaved)`,
  );
  console.log(`setup: ${result.setup}`);
  console.log('ratio: median over the no-program median; per round: each run over the no-program run of its round');
  console.log('hook                       Mpps (median)  ratio  per round: median (min-max)  frames');
  for (const row of result.rows) {
    const spread = `${pct(row.paired.median)} (${pct(row.paired.min)}-${pct(row.paired.max)})`;
    const received = row.runs.every((r) => r.frames.received === String(r.frames.sent));
    const exact = row.runs.every((r) => r.frames.counted === null || r.frames.counted === r.frames.received);
    const counted = row.runs[0]?.frames.counted === null ? '' : exact ? ', all counted' : ', COUNT MISMATCH (see JSON)';
    const frames = `${received ? 'all received' : 'some LOST (see JSON)'}${counted}`;
    console.log(
      `${row.hook.padEnd(26)} ${(row.median / 1e6).toFixed(3).padEnd(14)} ${pct(row.ratio).padEnd(6)} ${spread.padEnd(28)} ${frames}`,
    );
  }
  const { hook, ratio, measured, met } = result.target;
  const miss = met ? '' : `, missed by ${((ratio - measured) * 100).toFixed(1)} percentage points`;
  console.log(
    `live packets/s target: ${hook} keeps >= ${pct(ratio)}: ${pct(measured)}, ${met ? 'met' : 'NOT met'}${miss}`,
  );
  return met;
}
