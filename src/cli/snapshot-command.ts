// `carnx snapshot [--json]`: prints the counters pinned in bpffs once; needs no running agent and no collector.
import { ExitCode } from './exit-codes.js';
import { snapshotJson } from './snapshot-json.js';
import { PinnedSource, bpffsPathOf, isEmpty, nothingPinned, splitFlags } from './snapshot-source.js';
import { snapshotText } from './snapshot-text.js';

export const SNAPSHOT_HELP = `usage: carnx snapshot [--json] [--bpffs-path <dir>] [--config <file>]

Prints the counters carnx has pinned in bpffs, per interface and direction, as they are now (cumulative since
counting began). Reads the pinned maps directly: no agent needs to run, no collector is asked, and a running agent
is not disturbed (read-only, its bpffs lock is left alone). Run as root.

  --json              the stable JSON shape (schemaVersion 1): the exporter's metric names and attributes
  --bpffs-path <dir>  the agent's bpffs.path (default /sys/fs/bpf; also from --config or CARNX_BPFFS_PATH)
  --help              print this text

Exit codes: 0 read, 3 nothing pinned or the pins cannot be read (not root, bpffs not mounted).`;

export function snapshotCommand(argv: string[], out: (text: string) => void): number {
  const { own, config } = splitFlags(argv, ['--json', '--help', '-h']);
  if (own.has('--help') || own.has('-h')) {
    out(`${SNAPSHOT_HELP}\n`);
    return ExitCode.ok;
  }
  const source = new PinnedSource(bpffsPathOf(config));
  const read = source.read();
  if (isEmpty(read)) throw nothingPinned(source.bpffs);
  out(
    own.has('--json')
      ? `${JSON.stringify(snapshotJson(source.bpffs, read), null, 2)}\n`
      : snapshotText(source.bpffs, read),
  );
  // Something pinned but nothing readable is a failure too (the reasons are in the output).
  return read.readings.length > 0 ? ExitCode.ok : ExitCode.host;
}
