// Listing interfaces from a fake sysfs tree, and keeping only those with an Ethernet header (logged once per change).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listInterfaces } from '../../src/interfaces/interface-list.js';
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

test.run();
