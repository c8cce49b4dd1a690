// `carnx top`: a live view of the pinned counters, read once a second, until q, Ctrl-C or a signal.
import type { ReadStream, WriteStream } from 'node:tty';
import { HostNotReady } from '../host/host-errors.js';
import type { PinnedCounters } from '../reader/pinned-counters.js';
import { ExitCode } from './exit-codes.js';
import { PinnedSource, bpffsPathOf, isEmpty, nothingPinned, splitFlags } from './snapshot-source.js';
import { TopTerminal } from './top-terminal.js';
import { topFrame } from './top-view.js';

export const TOP_HELP = `usage: carnx top [--bpffs-path <dir>] [--config <file>]

A live view of the counters carnx has pinned in bpffs, refreshed every second: per interface and direction the
packets/s and bits/s, the protocol mix (share of packets/s), TCP flags/s, SYN vs SYN-ACK and malformed frames, with
exact totals since counting began. Reads the pinned maps directly: no collector is asked, and the running agent is
not disturbed (read-only, its bpffs lock is left alone). Run as root, in a terminal.

  --bpffs-path <dir>  the agent's bpffs.path (default /sys/fs/bpf; also from --config or CARNX_BPFFS_PATH)
  --help              print this text

Keys: q or Ctrl-C quits. Exit codes: 0 quit (also on SIGTERM/SIGINT/SIGHUP), 3 nothing pinned or not readable.`;

const REFRESH_MS = 1000;
const QUIT_KEYS = new Set(['q', 'Q', '\x03']);
const STOP_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

export async function topCommand(
  argv: string[],
  input: ReadStream = process.stdin as ReadStream,
  output: WriteStream = process.stdout as WriteStream,
): Promise<number> {
  const { own, config } = splitFlags(argv, ['--help', '-h']);
  if (own.size > 0) {
    output.write(`${TOP_HELP}\n`);
    return ExitCode.ok;
  }
  const source = new PinnedSource(bpffsPathOf(config));
  const first = source.read();
  if (isEmpty(first)) throw nothingPinned(source.bpffs);
  if (!input.isTTY || !output.isTTY) {
    throw new HostNotReady('carnx top needs a terminal on stdin and stdout: use carnx snapshot (--json) in scripts');
  }
  return showTop({ bpffs: source.bpffs, read: () => source.read(), first, input, output, refreshMs: REFRESH_MS });
}

export interface TopSession {
  bpffs: string;
  /** One read of the pins; a throw ends top (after the terminal is given back). */
  read: () => PinnedCounters;
  first: PinnedCounters;
  input: ReadStream;
  output: WriteStream;
  refreshMs: number;
}

/** Takes the terminal, redraws every refreshMs until a quit key or a stop signal, and gives the terminal back. */
export async function showTop(session: TopSession): Promise<number> {
  const terminal = new TopTerminal(session.input, session.output);
  try {
    terminal.enter();
    return await runUntilQuit(session, terminal);
  } finally {
    terminal.restore();
  }
}

/** Resolves on a quit key or a stop signal; rejects (after clean-up) when a read or a draw fails. */
function runUntilQuit(
  { bpffs, read, first, input, output, refreshMs }: TopSession,
  terminal: TopTerminal,
): Promise<number> {
  return new Promise((resolve, reject) => {
    let previous: PinnedCounters | undefined;
    let current = first;
    const draw = () =>
      terminal.draw(topFrame({ bpffs, previous, current, width: terminal.columns, height: terminal.rows }));
    const guarded = (step: () => void) => () => {
      try {
        step();
      } catch (err) {
        finish(() => reject(err));
      }
    };
    const tick = guarded(() => {
      previous = current;
      current = read();
      draw();
    });
    const onKey = (data: Buffer) => {
      if ([...data.toString('utf8')].some((key) => QUIT_KEYS.has(key))) finish(() => resolve(ExitCode.ok));
    };
    const onSignal = () => finish(() => resolve(ExitCode.ok));
    const onResize = guarded(draw);
    const timer = setInterval(tick, refreshMs);
    input.on('data', onKey);
    output.on('resize', onResize);
    for (const s of STOP_SIGNALS) process.on(s, onSignal);
    function finish(settle: () => void): void {
      clearInterval(timer);
      input.removeListener('data', onKey);
      output.removeListener('resize', onResize);
      for (const s of STOP_SIGNALS) process.removeListener(s, onSignal);
      settle();
    }
    guarded(draw)();
  });
}
