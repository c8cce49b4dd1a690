// carnx top's loop on a stand-in terminal: quit keys, signals and a failing read all end it with the terminal given back.
import { EventEmitter } from 'node:events';
import type { ReadStream, WriteStream } from 'node:tty';
import { tmpdir } from 'node:os';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { emptyCounters } from '../../src/bpf/counter-layout.js';
import { TOP_HELP, showTop, topCommand } from '../../src/cli/top-command.js';
import { TopTerminal } from '../../src/cli/top-terminal.js';
import type { PinnedCounters } from '../../src/reader/pinned-counters.js';

const ENTER = '\x1b[?1049h\x1b[?25l';
const RESTORE = '\x1b[?25h\x1b[?1049l';

function readAt(seconds: number, udp: bigint): PinnedCounters {
  const counters = emptyCounters();
  counters.packets[1] = udp;
  const ns = BigInt(seconds * 1e9);
  return {
    readAtUnixNs: ns,
    readAtMonotonicNs: ns,
    readings: [
      { ifname: 'eth0', direction: 'receive', hook: 'tc-ingress', ifindex: 2, countingSinceUnixNs: 0n, counters },
    ],
    unread: [],
  };
}

function fakeTty() {
  const written: string[] = [];
  const raw: boolean[] = [];
  const input = Object.assign(new EventEmitter(), {
    isTTY: true,
    setRawMode: (on: boolean) => raw.push(on),
    resume: () => undefined,
    pause: () => undefined,
  });
  const output = Object.assign(new EventEmitter(), {
    isTTY: true,
    columns: 80,
    rows: 30,
    write: (s: string) => written.push(s),
  });
  return { written, raw, input, output };
}

function start(read: () => PinnedCounters, tty: ReturnType<typeof fakeTty>): Promise<number> {
  return showTop({
    bpffs: '/b',
    read,
    first: readAt(0, 0n),
    input: tty.input as unknown as ReadStream,
    output: tty.output as unknown as WriteStream,
    refreshMs: 5,
  });
}

/** Resolves once `n` screens have been drawn after entering. */
async function drawn(tty: ReturnType<typeof fakeTty>, n: number): Promise<void> {
  while (tty.written.filter((w) => w.startsWith('\x1b[1;1H')).length < n) await new Promise((r) => setTimeout(r, 2));
}

test('redraws each refresh with rates; q quits with 0 and gives the terminal back', async () => {
  const tty = fakeTty();
  let second = 0;
  const done = start(() => readAt(++second, BigInt(second) * 250n), tty);
  await drawn(tty, 3);
  tty.input.emit('data', Buffer.from('q'));
  assert.is(await done, 0);
  assert.is(tty.written[0], ENTER);
  assert.is(tty.written.at(-1), RESTORE);
  assert.equal(tty.raw, [true, false]);
  const screens = tty.written.filter((w) => w.startsWith('\x1b[1;1H'));
  assert.match(screens[0] ?? '', /all +- +- +- +0 +0/, 'no rate on the first screen');
  assert.match(screens[2] ?? '', /ipv4 udp +250 +0 +100% +500 +0/, 'a 1 s rate between reads');
  assert.is(tty.input.listenerCount('data'), 0, 'no key listener left');
});

test('Ctrl-C (raw mode delivers it as a byte) and SIGTERM quit with 0, the terminal given back', async () => {
  for (const stop of [
    (tty: ReturnType<typeof fakeTty>) => tty.input.emit('data', Buffer.from('\x03')),
    () => process.emit('SIGTERM'),
    () => process.emit('SIGHUP'),
  ]) {
    const tty = fakeTty();
    const signals = process.listenerCount('SIGTERM');
    const done = start(() => readAt(1, 0n), tty);
    await drawn(tty, 1);
    assert.is(process.listenerCount('SIGTERM'), signals + 1);
    stop(tty);
    assert.is(await done, 0);
    assert.is(tty.written.at(-1), RESTORE);
    assert.is(process.listenerCount('SIGTERM'), signals, 'signal handlers removed');
  }
});

test('a read that fails ends top with that error, after the terminal is given back; no timer left running', async () => {
  const tty = fakeTty();
  let reads = 0;
  const done = start(() => {
    reads++;
    throw new Error('bpf_obj_get failed for /b/carnx/v1/eth0/counters: EACCES');
  }, tty);
  try {
    await done;
    assert.unreachable('top should fail');
  } catch (err) {
    assert.match((err as Error).message, /EACCES/);
  }
  assert.is(tty.written.at(-1), RESTORE);
  assert.equal(tty.raw, [true, false]);
  await new Promise((r) => setTimeout(r, 30));
  assert.is(reads, 1, 'no read after the failure');
});

test('--help prints its own text without touching bpffs', async () => {
  const tty = fakeTty();
  const code = await topCommand(['--help'], tty.input as unknown as ReadStream, tty.output as unknown as WriteStream);
  assert.is(code, 0);
  assert.equal(tty.written, [`${TOP_HELP}\n`]);
  assert.match(TOP_HELP, /^usage: carnx top /);
});

test('a bpffs.path that is no bpffs is refused before the terminal is touched', async () => {
  const tty = fakeTty();
  try {
    await topCommand(
      ['--bpffs-path', tmpdir()],
      tty.input as unknown as ReadStream,
      tty.output as unknown as WriteStream,
    );
    assert.unreachable('refused');
  } catch (err) {
    assert.match((err as Error).message, /is not a bpf filesystem/);
  }
  assert.equal(tty.written, []);
  assert.equal(tty.raw, []);
});

test('whatever ends the process gives the terminal back: the exit handler restores it', () => {
  const tty = fakeTty();
  const terminal = new TopTerminal(tty.input as unknown as ReadStream, tty.output as unknown as WriteStream);
  const before = process.listeners('exit');
  terminal.enter();
  const added = process.listeners('exit').filter((l) => !before.includes(l));
  assert.is(added.length, 1);
  (added[0] as () => void)();
  assert.equal(tty.written, [ENTER, RESTORE]);
  assert.equal(tty.raw, [true, false]);
  assert.is(process.listeners('exit').length, before.length, 'the handler removed itself');
});

test.run();
