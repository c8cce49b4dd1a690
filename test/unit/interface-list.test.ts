// Listing interfaces from a fake sysfs tree, and keeping only those with an Ethernet header (logged once per change).
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InterfaceLister, listInterfaces } from '../../src/interfaces/interface-list.js';
import { EthernetOnly } from '../../src/interfaces/link-type.js';
import type { Logger } from '../../src/log/logger.js';

function fakeSysClassNet(devices: Record<string, { ifindex: number; type?: number }>): string {
  const root = mkdtempSync(join(tmpdir(), 'carnx-sysnet-'));
  for (const [name, d] of Object.entries(devices)) {
    mkdirSync(join(root, name));
    writeFileSync(join(root, name, 'ifindex'), `${d.ifindex}\n`);
    if (d.type !== undefined) writeFileSync(join(root, name, 'type'), `${d.type}\n`);
  }
  return root;
}

function recordingLogger(lines: { msg: string; fields: Record<string, unknown> }[]): Logger {
  return { info: (fields: Record<string, unknown>, msg: string) => lines.push({ msg, fields }) } as unknown as Logger;
}

const SKIP = 'not counting on interface: its link type has no Ethernet header';

test('lists name, ifindex and link type, sorted by ifindex; a device without type is left out', () => {
  const root = fakeSysClassNet({
    tun0: { ifindex: 7, type: 65534 },
    eth0: { ifindex: 2, type: 1 },
    half: { ifindex: 9 }, // vanished between the listing and the read
  });
  try {
    assert.equal(listInterfaces(root), [
      { name: 'eth0', ifindex: 2, linkType: 1 },
      { name: 'tun0', ifindex: 7, linkType: 65534 },
    ]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('non-Ethernet link types are skipped with one info line per interface and state change', () => {
  const root = fakeSysClassNet({
    eth0: { ifindex: 2, type: 1 },
    tun0: { ifindex: 3, type: 65534 },
    ppp0: { ifindex: 4, type: 512 },
    ipip0: { ifindex: 5, type: 768 },
  });
  const lines: { msg: string; fields: Record<string, unknown> }[] = [];
  const only = new EthernetOnly(recordingLogger(lines));
  try {
    const listed = listInterfaces(root);
    assert.equal(
      only.filter(listed).map((i) => i.name),
      ['eth0'],
    );
    assert.equal(
      only.filter(listed).map((i) => i.name),
      ['eth0'],
      'the same answer at the next rescan',
    );
    assert.equal(
      lines.map((l) => [l.msg, l.fields.interface, l.fields.linkType, l.fields.linkTypeName]),
      [
        [SKIP, 'tun0', 65534, 'none'],
        [SKIP, 'ppp0', 512, 'ppp'],
        [SKIP, 'ipip0', 768, 'ipip'],
      ],
      'logged once, not at every rescan',
    );
    lines.length = 0;
    // tun0 gone, then back: a new state, said again.
    only.filter(listed.filter((i) => i.name !== 'tun0'));
    assert.equal(lines, []);
    only.filter(listed);
    assert.equal(
      lines.map((l) => l.fields.interface),
      ['tun0'],
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

/**
 * A new entry for `name`, made beside the old one and renamed into place: a fake tree on a disk file system could
 * otherwise hand the new directory the inode just freed, which sysfs never does.
 */
function recreate(root: string, name: string, ifindex: number): void {
  const fresh = join(root, `${name}.new`);
  mkdirSync(fresh);
  writeFileSync(join(fresh, 'ifindex'), `${ifindex}\n`);
  writeFileSync(join(fresh, 'type'), '1\n');
  rmSync(join(root, name), { recursive: true, force: true });
  renameSync(fresh, join(root, name));
}

test('a rescan re-reads only new or re-created entries; a re-created name gets fresh values, a gone one is dropped', () => {
  const root = fakeSysClassNet({ eth0: { ifindex: 2, type: 1 }, eth1: { ifindex: 3, type: 1 } });
  try {
    const lister = new InterfaceLister(root);
    assert.equal(
      lister.list().map((i) => [i.name, i.ifindex]),
      [
        ['eth0', 2],
        ['eth1', 3],
      ],
    );
    // The same entry (same inode) is not read again: a value changed in place (which sysfs never does) goes unseen.
    writeFileSync(join(root, 'eth0', 'ifindex'), '99\n');
    assert.equal(
      lister.list().map((i) => i.ifindex),
      [2, 3],
      'cached while the entry is the same',
    );
    // eth0 re-created (a new entry under the same name): read afresh.
    recreate(root, 'eth0', 7);
    assert.equal(
      lister.list().map((i) => [i.name, i.ifindex]),
      [
        ['eth1', 3],
        ['eth0', 7],
      ],
    );
    // eth1 gone, then back as a new entry with the old values changed: no stale cache entry answers for it.
    rmSync(join(root, 'eth1'), { recursive: true });
    assert.equal(
      lister.list().map((i) => i.name),
      ['eth0'],
    );
    recreate(root, 'eth1', 8);
    assert.equal(
      lister.list().map((i) => [i.name, i.ifindex]),
      [
        ['eth0', 7],
        ['eth1', 8],
      ],
    );
    // What a caller does with the returned objects does not reach the cache.
    const [first] = lister.list();
    if (first) first.ifindex = 1000;
    assert.is(lister.list()[0]?.ifindex, 7);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
