// The live bench's generator, checked frame for frame: what BPF_PROG_TEST_RUN live frames sends, the veth receives.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ipv4, udp } from '../fixtures/frames.js';
import { requireRoot } from '../fixtures/privileges.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { LiveGenerator } from '../bench/live-generator.js';
import { type Holding, LIVE_HOOKS, attachHook } from '../bench/live-hooks.js';
import { BenchPair } from '../bench/live-pair.js';

const Live = suite('live frames');
const cleanups = new Cleanups();
const FRAMES = 10_000;
const FRAME = ipv4('IPv4 UDP', udp()).bytes;

Live.before(() => requireRoot('the live-frames tests'));
Live.after.each(() => cleanups.run());

function setUp(tag: string): { pair: BenchPair; gen: LiveGenerator } {
  const pair = cleanups.add(new BenchPair(tag), (p) => p.destroy()).create();
  const gen = cleanups.add(new LiveGenerator(), (g) => g.close());
  return { pair, gen };
}

Live('every frame the generator sends arrives: rx_packets grows by exactly the count', () => {
  const { pair, gen } = setUp('a');
  const before = pair.rxPackets();
  const seconds = gen.send(pair.ifindex(pair.sender), FRAME, FRAMES);
  assert.is(pair.rxPackets() - before, BigInt(FRAMES));
  assert.ok(seconds > 0, 'the send took measurable time');
});

Live('with the agent in native XDP, carnx counts every generated frame, as rx_packets does', async () => {
  const { pair, gen } = setUp('n');
  const native = LIVE_HOOKS.find((h) => h.mode === 'native');
  assert.ok(native, 'the bench has a native row');
  const holding: Holding = {};
  const attached = await attachHook(native!, pair.receiver, holding);
  cleanups.add(attached, (a) => a.detach());
  const before = { counted: attached.packets(), rx: pair.rxPackets() };
  gen.send(pair.ifindex(pair.sender), FRAME, FRAMES);
  assert.is(pair.rxPackets() - before.rx, BigInt(FRAMES));
  assert.is((attached.packets() ?? 0n) - (before.counted ?? 0n), BigInt(FRAMES));
  assert.ok(before.counted !== null, 'the agent pinned its counters');
});

Live.run();
