// The live benchmarks' ratios: a hook's median over the baseline's, and each run over its own round's baseline run.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { median, pct, ratioOf, rotated } from '../bench/live-ratios.js';

test('median of odd and even counts, NaN for none', () => {
  assert.is(median([3, 1, 2]), 2);
  assert.is(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

test('ratio of medians, and the spread of runs paired by round', () => {
  const baseline = [
    { round: 0, value: 100 },
    { round: 1, value: 200 },
    { round: 2, value: 100 },
  ];
  const hook = [
    { round: 1, value: 100 },
    { round: 0, value: 90 },
    { round: 2, value: 120 },
  ];
  const r = ratioOf(hook, baseline);
  assert.is(r.median, 100);
  assert.is(r.ratio, 1); // 100 over the baseline's median 100
  assert.equal(r.paired, { median: 0.9, min: 0.5, max: 1.2 });
});

test('pct rounds to whole percent and shows a missing ratio as -', () => {
  assert.is(pct(0.974), '97%');
  assert.is(pct(Number.NaN), '-');
});

test('rotated starts each round one hook later and keeps every hook', () => {
  assert.equal(rotated(['a', 'b', 'c'], 0), ['a', 'b', 'c']);
  assert.equal(rotated(['a', 'b', 'c'], 1), ['b', 'c', 'a']);
  assert.equal(rotated(['a', 'b', 'c'], 5), ['c', 'a', 'b']);
});

test.run();
