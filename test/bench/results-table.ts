// The README's benchmark tables, rendered from the newest results file that holds each section (`npm run docs`).
import type { ResultsDoc } from './results.js';

// Results are read back from JSON written by earlier versions too: shapes are checked as they are used.
// biome-ignore lint/suspicious/noExplicitAny: see above
type Json = any;

const pct = (ratio: number): string => (Number.isFinite(ratio) ? `${(ratio * 100).toFixed(0)}%` : '-');
const spread = (row: Json): string => `${pct(row.paired?.min)}-${pct(row.paired?.max)}`;

/** One renderer per section key; a section without one is left out of the README (it is still in the JSON). */
const RENDERERS: Record<string, (result: Json) => string[]> = {
  perPacket: (hooks: Json[]) => {
    const frames: string[] = hooks[0]?.rows.map((r: Json) => r.frame) ?? [];
    const bare = hooks.map((h) => `${h.hook} ${h.baseline}: ${minMax(h.rows.map((r: Json) => r.baseline.min))} ns`);
    return [
      `Per packet (BPF_PROG_TEST_RUN, ${hooks[0]?.repeat?.toExponential()} repetitions, min of ${hooks[0]?.runs} ` +
        `runs), ns over the bare program of the same hook (${bare.join('; ')}); target: XDP <= ` +
        `${hooks[0]?.targetNs} ns, ${hooks.map((h) => `${h.hook} ${h.met ? 'met' : 'missed'}${h.gating ? '' : ' (reported only)'}`).join(', ')}:`,
      '',
      `| frame | ${hooks.map((h) => h.hook).join(' | ')} |`,
      `| --- |${hooks.map(() => ' --- |').join('')}`,
      ...frames.map(
        (frame) =>
          `| ${frame} | ${hooks.map((h) => `+${h.rows.find((r: Json) => r.frame === frame)?.overheadNs}`).join(' | ')} |`,
      ),
    ];
  },
  livePps: (r: Json) => [
    `Packets per second received through a veth, generated live (${r.rounds} rounds of ${r.sends} x ` +
      `${r.frames.toExponential()} frames; no program: ${(median(r, 'no program') / 1e6).toFixed(2)} Mpps); ` +
      `target: ${verdict(r)}:`,
    '',
    '| hook | Mpps (median) | ratio of medians | per round against its no-program run (min-max) |',
    '| --- | --- | --- | --- |',
    ...r.rows.map(
      (row: Json) => `| ${row.hook} | ${(row.median / 1e6).toFixed(3)} | ${pct(row.ratio)} | ${spread(row)} |`,
    ),
  ],
  throughput: (r: Json) => [
    `TCP throughput with GRO, single stream (${r.rounds} runs of ${r.seconds} s per hook); target: ` + `${verdict(r)}:`,
    '',
    "| hook | Gbit/s (median) | ratio of medians | per run against its round's no-program run (min-max) |",
    '| --- | --- | --- | --- |',
    ...r.rows.map((row: Json) =>
      row.skipped
        ? `| ${row.hook} | not measured | | ${row.skipped} |`
        : `| ${row.hook} | ${(row.median ?? row.medianGbps).toFixed(2)} | ${pct(row.ratio)} | ${spread(row)} |`,
    ),
  ],
  collection: (r: Json) => {
    const rs = r.readSum;
    const ms = (m: Json) => (m?.cpuMedianMs === undefined ? '-' : `${m.cpuMedianMs.toFixed(1)} ms`);
    const rows = [
      `| read + sum, ${rs.interfaces} interfaces x ${rs.cpus} possible CPUs, one direction (target < 10 ms) | ` +
        `${ms(rs.carnx)}, ${rs.met ? 'met' : 'missed'} | copying the same values only: ${ms(rs.copyOnly)}; ` +
        `one bigint per word: ${ms(rs.bigintPerWord)} |`,
      ...r.wire.map(
        (w: Json) =>
          `| bytes per interface per export at ${w.interfaces} interfaces (target < 1 KB with gzip) | ` +
          `${Math.round(w.gzipPerInterface)} B gzip, ${(w.perInterface / 1000).toFixed(1)} KB without, ` +
          `${w.met ? 'met' : 'missed'} | ${Math.round(w.points / w.interfaces)} points per interface |`,
      ),
      ...r.exportCost.map(
        (e: Json) =>
          `| CPU per collection + export, ${e.interfaces} interfaces, gzip${e.interfaces === 500 ? ' (target < 0.5% of a core at 10 s exports)' : ''} | ` +
          `${e.carnx.cpuMsPerExport.toFixed(0)} ms (${e.percentOfCore.toFixed(2)}% of a core)` +
          `${e.interfaces === 500 ? (e.percentOfCore < 0.5 ? ', met' : ', missed') : ''} | ` +
          `bare OpenTelemetry SDK, same series: ${e.bare.cpuMsPerExport.toFixed(0)} ms (${e.cpuRatio.toFixed(2)}x) |`,
      ),
      ...r.exportCost.map(
        (e: Json) =>
          `| RSS at ${e.interfaces} interfaces (target <= 1.2x the bare SDK) | ${e.carnx.rssMb.toFixed(0)} MB, ` +
          `${e.rssRatio <= 1.2 ? 'met' : 'missed'} | bare SDK: ${e.bare.rssMb.toFixed(0)} MB (${e.rssRatio.toFixed(2)}x) |`,
      ),
      `| rescan listing, ${r.rescan.interfaces} interfaces | ${ms(r.rescan.listing)} | reading every entry again: ${ms(r.rescan.uncached)} |`,
    ];
    return [
      'Collection and export (process CPU time, median of runs; the series of both directions and `system.network.*`):',
      '',
      '| what | carnx | baseline in the same run |',
      '| --- | --- | --- |',
      ...rows,
    ];
  },
  startup: (runs: Json[]) => {
    const s = (run: Json) =>
      run
        ? `${(run.totalMs / 1000).toFixed(2)} s (boot ${run.bootMs} ms, attach ${run.attachMs} ms, CPU ${(run.cpuMs / 1000).toFixed(1)} s)`
        : '-';
    return [
      'Start-up: from the process start until every interface is counted in both directions (target: 100 interfaces ' +
        'within 1 s), fresh (every program verified, linked and pinned) and adopting the pins after a restart:',
      '',
      '| interfaces | fresh | adopted |',
      '| --- | --- | --- |',
      ...runs.map((r: Json) =>
        r.error ? `| ${r.interfaces} | ${r.error} | |` : `| ${r.interfaces} | ${s(r.fresh)} | ${s(r.adopted)} |`,
      ),
    ];
  },
};

/** `carnx XDP native >= 97%: 104%, met` (files before the measured field: the target row's ratio). */
function verdict(r: Json): string {
  const measured = r.target.measured ?? r.rows.find((row: Json) => row.hook === r.target.hook)?.ratio;
  return `${r.target.hook} >= ${pct(r.target.ratio)}: ${pct(measured)}, ${r.target.met ? 'met' : 'missed'}`;
}

function minMax(values: number[]): string {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return lo === hi ? String(lo) : `${lo}-${hi}`;
}

function median(result: Json, hook: string): number {
  return result.rows.find((row: Json) => row.hook === hook)?.median ?? Number.NaN;
}

function describeMachine(doc: ResultsDoc): string {
  const m = doc.machine;
  const load = `load average ${m.loadavg.start[0]} at the start, ${m.loadavg.end[0]} at the end`;
  return `${m.host ? `${m.host}: ` : ''}${m.nproc} CPUs (${m.cpu}), kernel ${m.kernel}, Node ${m.node.replace(/^v/, '')}, ${load}`;
}

/**
 * Markdown for every section with a renderer, each from the newest file (`docs` newest first) that has it, headed
 * by the file and the machine it ran on.
 */
export function renderBenchResults(docs: ReadonlyArray<{ file: string; doc: ResultsDoc }>): string {
  const out: string[] = [];
  let lastFile: string | undefined;
  for (const [name, render] of Object.entries(RENDERERS)) {
    const source = docs.find((d) => d.doc[name] !== undefined);
    if (!source) continue;
    if (source.file !== lastFile) {
      out.push(
        `From [${source.file}](test/bench/results/${source.file}), ${source.doc.date.slice(0, 16).replace('T', ' ')} UTC ` +
          `on ${describeMachine(source.doc)}.`,
        '',
      );
      lastFile = source.file;
    }
    out.push(...render(source.doc[name]), '');
  }
  return out.join('\n').trim();
}
