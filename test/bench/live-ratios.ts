// Ratios against a baseline measured in the same invocation, with their spread: shared by the live benchmarks.

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** One measurement of one hook; `round` pairs it with the baseline's measurement of the same round. */
export interface RoundValue {
  round: number;
  value: number;
}

export interface Ratio {
  /** The hook's median value. */
  median: number;
  /** Its median over the baseline's median: the headline number. */
  ratio: number;
  /** Run-to-run spread: each run over the baseline's run of its round (median, min, max). */
  paired: { median: number; min: number; max: number };
}

export function ratioOf(own: readonly RoundValue[], baseline: readonly RoundValue[]): Ratio {
  const pairs = own.map((r) => r.value / (baseline.find((b) => b.round === r.round)?.value ?? Number.NaN));
  const ownMedian = median(own.map((r) => r.value));
  return {
    median: ownMedian,
    ratio: ownMedian / median(baseline.map((r) => r.value)),
    paired: { median: median(pairs), min: Math.min(...pairs), max: Math.max(...pairs) },
  };
}

export const pct = (ratio: number): string => (Number.isFinite(ratio) ? `${(ratio * 100).toFixed(0)}%` : '-');

/** `hook order rotated by round`: every hook runs once per round, each round starting one later. */
export function rotated<T>(items: readonly T[], round: number): T[] {
  return items.map((_, i) => items[(i + round) % items.length] as T);
}
