// Reading pinned counters through a stand-in libbpf: shape checked before any lookup, hooks told, fds closed, failures apart.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Libbpf } from '../../src/bpf/libbpf.js';
import {
  COUNTERS_SIZE,
  COUNTERS_WORDS,
  LAYOUT_VERSION,
  META_SIZE,
  decodeCounters,
  emptyCounters,
  encodeMeta,
} from '../../src/bpf/counter-layout.js';
import { interfacePins } from '../../src/attach/pin-paths.js';
import { readPinnedCounters } from '../../src/reader/pinned-counters.js';

const SINCE = 1_700_000_000_000_000_123n;

interface FakeMap {
  type: number;
  valueSize: number;
  words?: bigint[];
  meta?: Buffer;
}
interface FakeLink {
  progId: number;
  ifindex: number;
}

/** A libbpf whose pinned objects are described by path; records lookups and open fds. */
function fakeLib(objects: Map<string, FakeMap | FakeLink>, hooks: { drv?: number; skb?: number; egress?: number[] }) {
  const open = new Map<number, string>();
  const lookups: string[] = [];
  const queries = { xdp: 0, tcx: 0 };
  let next = 100;
  const at = (fd: number) => objects.get(open.get(fd) ?? '') as FakeMap & FakeLink;
  const lib = {
    getPinned: (path: string) => {
      if (!objects.has(path)) throw new Error(`bpf_obj_get failed for ${path}: ENOENT`);
      open.set(next, path);
      return next++;
    },
    closeFd: (fd: number) => open.delete(fd),
    mapInfo: (fd: number) => ({ type: at(fd).type, keySize: 4, valueSize: at(fd).valueSize, maxEntries: 1 }),
    lookup: (fd: number) => {
      lookups.push(open.get(fd)!);
      return at(fd).meta!;
    },
    lookupPerCpuU64Sums: (fd: number) => {
      lookups.push(open.get(fd)!);
      if (!at(fd).words) throw new Error('bpf_map_lookup_elem failed: EFAULT');
      return at(fd).words!;
    },
    linkInfo: (fd: number) => ({ id: at(fd).progId + 1000, progId: at(fd).progId, ifindex: at(fd).ifindex }),
    xdpQuery: () => {
      queries.xdp++;
      return { progId: 0, drvProgId: hooks.drv ?? 0, skbProgId: hooks.skb ?? 0, hwProgId: 0, attachMode: 'drv' };
    },
    tcxQuery: (_ifindex: number, direction: string) => {
      queries.tcx++;
      return direction === 'egress' ? (hooks.egress ?? []) : [];
    },
  };
  return { lib: lib as unknown as Libbpf, open, lookups, queries };
}

function words(seed: number): bigint[] {
  return Array.from({ length: COUNTERS_WORDS }, (_, i) => BigInt(seed + i));
}

const meta = encodeMeta({
  countingSinceUnixNs: SINCE,
  layoutVersion: LAYOUT_VERSION,
  ifindex: 9,
  deltaExportedUntilUnixNs: 0n,
  deltaExported: emptyCounters(),
});

/** Pins one direction on disk (the inventory reads names) and describes its objects for the fake libbpf. */
function pin(
  bpffs: string,
  objects: Map<string, FakeMap | FakeLink>,
  ifname: string,
  direction: 'receive' | 'transmit',
  o: { counters?: FakeMap; link?: FakeLink },
): void {
  const pins = interfacePins(bpffs, ifname, direction);
  mkdirSync(pins.dir, { recursive: true });
  const put = (path: string, object: FakeMap | FakeLink | undefined) => {
    if (!object) return;
    writeFileSync(path, '');
    objects.set(path, object);
  };
  put(pins.counters, o.counters);
  put(pins.meta, { type: 2, valueSize: META_SIZE, meta });
  put(pins.link, o.link);
}

test('reads each complete direction: summed counters, counting start, the hook it runs on now; every fd closed', () => {
  const bpffs = mkdtempSync(join(tmpdir(), 'carnx-pinned-'));
  try {
    const objects = new Map<string, FakeMap | FakeLink>();
    pin(bpffs, objects, 'eth0', 'receive', {
      counters: { type: 6, valueSize: COUNTERS_SIZE, words: words(1) },
      link: { progId: 41, ifindex: 9 },
    });
    pin(bpffs, objects, 'eth0', 'transmit', {
      counters: { type: 6, valueSize: COUNTERS_SIZE, words: words(1000) },
      link: { progId: 42, ifindex: 9 },
    });
    pin(bpffs, objects, 'gone0', 'receive', {
      counters: { type: 6, valueSize: COUNTERS_SIZE, words: words(5) },
      link: { progId: 43, ifindex: 0 },
    });
    const { lib, open } = fakeLib(objects, { drv: 41, egress: [7, 42] });
    const read = readPinnedCounters(lib, bpffs, true);
    assert.equal(read.unread, []);
    assert.equal(
      read.readings.map((r) => [r.ifname, r.direction, r.hook, r.ifindex, r.countingSinceUnixNs]),
      [
        ['eth0', 'receive', 'xdp-native', 9, SINCE],
        ['eth0', 'transmit', 'tc-egress', 9, SINCE],
        ['gone0', 'receive', undefined, 0, SINCE],
      ],
    );
    assert.equal(read.readings[1]?.counters, decodeCounters(words(1000)));
    assert.is(open.size, 0, 'no fd left open');
    assert.ok(read.readAtUnixNs > 0n && read.readAtMonotonicNs > 0n);
  } finally {
    rmSync(bpffs, { recursive: true });
  }
});

test('a map of another shape is never looked up; an unfinished attach and a failed read are reported, not zeros', () => {
  const bpffs = mkdtempSync(join(tmpdir(), 'carnx-pinned-'));
  try {
    const objects = new Map<string, FakeMap | FakeLink>();
    pin(bpffs, objects, 'big0', 'receive', {
      counters: { type: 6, valueSize: COUNTERS_SIZE + 8, words: words(1) },
      link: { progId: 1, ifindex: 3 },
    });
    pin(bpffs, objects, 'cut0', 'receive', { counters: { type: 6, valueSize: COUNTERS_SIZE, words: words(1) } });
    pin(bpffs, objects, 'fail0', 'receive', {
      counters: { type: 6, valueSize: COUNTERS_SIZE },
      link: { progId: 2, ifindex: 4 },
    });
    const { lib, open, lookups } = fakeLib(objects, {});
    const read = readPinnedCounters(lib, bpffs, false);
    assert.equal(read.readings, []);
    const counters = interfacePins(bpffs, 'big0').counters;
    assert.equal(read.unread, [
      {
        ifname: 'big0',
        direction: 'receive',
        reason: `${counters} is not a carnx map: valueSize ${COUNTERS_SIZE + 8}, expected ${COUNTERS_SIZE}`,
      },
      { ifname: 'cut0', direction: 'receive', reason: 'attach not complete (link, counters or meta pin missing)' },
      { ifname: 'fail0', direction: 'receive', reason: 'bpf_map_lookup_elem failed: EFAULT' },
    ]);
    assert.not.ok(
      lookups.some((path) => path.includes('big0')),
      'nothing of the misfit was looked up',
    );
    assert.is(open.size, 0, 'no fd left open, failures included');
  } finally {
    rmSync(bpffs, { recursive: true });
  }
});

test("with a cache each link's hook is asked once; links no longer pinned leave the cache", () => {
  const bpffs = mkdtempSync(join(tmpdir(), 'carnx-pinned-'));
  try {
    const objects = new Map<string, FakeMap | FakeLink>();
    for (const [ifname, progId] of [
      ['eth0', 41],
      ['eth1', 51],
    ] as const) {
      pin(bpffs, objects, ifname, 'receive', {
        counters: { type: 6, valueSize: COUNTERS_SIZE, words: words(1) },
        link: { progId, ifindex: 9 },
      });
    }
    const { lib, queries } = fakeLib(objects, { skb: 41 });
    const cache = new Map();
    readPinnedCounters(lib, bpffs, true, cache);
    const first = { ...queries };
    assert.ok(first.xdp > 0, 'asked the kernel the first time');
    const again = readPinnedCounters(lib, bpffs, true, cache);
    assert.equal(queries, first, 'not again');
    assert.equal(
      again.readings.map((r) => r.hook),
      ['xdp-generic', undefined],
    );
    assert.equal([...cache.keys()], [1041, 1051]);
    rmSync(interfacePins(bpffs, 'eth1').dir, { recursive: true });
    readPinnedCounters(lib, bpffs, true, cache);
    assert.equal([...cache.keys()], [1041]);
  } finally {
    rmSync(bpffs, { recursive: true });
  }
});

test.run();
