// The pin inventory: what a tree of carnx pins lists, built here as plain files in a temporary directory.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pinInventory } from '../../src/attach/pin-inventory.js';
import { carnxPinRoot, interfacePins, layoutPinDir } from '../../src/attach/pin-paths.js';

function tree(): string {
  return mkdtempSync(join(tmpdir(), 'carnx-inventory-'));
}

/** Pins the named objects of one direction as empty files (the inventory only looks at names). */
function pin(bpffs: string, ifname: string, direction: 'receive' | 'transmit', objects: string[]): void {
  const pins = interfacePins(bpffs, ifname, direction);
  mkdirSync(pins.dir, { recursive: true });
  for (const o of objects) writeFileSync(pins[o as 'link' | 'prog' | 'counters' | 'meta'], '');
}

test('a bpffs without a carnx tree is an empty inventory', () => {
  const bpffs = tree();
  try {
    assert.equal(pinInventory(bpffs), { layoutDir: layoutPinDir(bpffs), pinned: [], otherLayoutDirs: [] });
    assert.equal(pinInventory(join(bpffs, 'missing')).pinned, []);
  } finally {
    rmSync(bpffs, { recursive: true });
  }
});

test('lists each interface and direction with decoded names, paths, the transmit hook, sorted', () => {
  const bpffs = tree();
  try {
    const all = ['link', 'prog', 'counters', 'meta'];
    pin(bpffs, 'veth1', 'transmit', all);
    pin(bpffs, 'veth1', 'receive', all);
    pin(bpffs, 'eth0.100', 'receive', all);
    const { pinned } = pinInventory(bpffs);
    assert.equal(
      pinned.map((p) => [p.ifname, p.direction, p.hook, p.complete]),
      [
        ['eth0.100', 'receive', undefined, true],
        ['veth1', 'receive', undefined, true],
        ['veth1', 'transmit', 'tc-egress', true],
      ],
    );
    const tx = pinned[2];
    const dir = join(layoutPinDir(bpffs), 'veth1');
    assert.equal(tx, {
      ifname: 'veth1',
      direction: 'transmit',
      hook: 'tc-egress',
      dir,
      counters: join(dir, 'tx_counters'),
      hasCounters: true,
      meta: join(dir, 'tx_meta'),
      hasMeta: true,
      link: join(dir, 'tx_link'),
      hasLink: true,
      prog: join(dir, 'tx_prog'),
      hasProg: true,
      complete: true,
    });
    assert.is(pinned[0]?.dir, join(layoutPinDir(bpffs), 'eth0%2E100'));
    assert.is(pinned[0]?.counters, join(layoutPinDir(bpffs), 'eth0%2E100', 'counters'));
  } finally {
    rmSync(bpffs, { recursive: true });
  }
});

test('an attach cut short is listed as incomplete; an empty direction and stray files are not listed', () => {
  const bpffs = tree();
  try {
    pin(bpffs, 'cut', 'receive', ['counters', 'meta', 'prog']); // the link is pinned last: it never came
    pin(bpffs, 'linkonly', 'receive', ['link']);
    mkdirSync(join(layoutPinDir(bpffs), 'empty'));
    writeFileSync(join(layoutPinDir(bpffs), 'not-a-dir'), '');
    const { pinned } = pinInventory(bpffs);
    assert.equal(
      pinned.map((p) => [p.ifname, p.direction, p.hasLink, p.hasCounters, p.complete]),
      [
        ['cut', 'receive', false, true, false],
        ['linkonly', 'receive', true, false, false],
      ],
    );
  } finally {
    rmSync(bpffs, { recursive: true });
  }
});

test('a symlinked interface directory is not followed; other layouts are reported apart', () => {
  const bpffs = tree();
  const elsewhere = tree();
  try {
    pin(elsewhere, 'planted', 'receive', ['link', 'counters', 'meta']);
    mkdirSync(layoutPinDir(bpffs), { recursive: true });
    symlinkSync(interfacePins(elsewhere, 'planted').dir, join(layoutPinDir(bpffs), 'planted'));
    mkdirSync(join(carnxPinRoot(bpffs), 'v0'));
    const inventory = pinInventory(bpffs);
    assert.equal(inventory.pinned, []);
    assert.equal(inventory.otherLayoutDirs, [join(carnxPinRoot(bpffs), 'v0')]);
  } finally {
    rmSync(bpffs, { recursive: true });
    rmSync(elsewhere, { recursive: true });
  }
});

test('a tree that cannot be listed is an error naming it, not an empty inventory', () => {
  // EACCES needs a non-root user; a name too long for the kernel fails the same way for root too.
  const bpffs = join(tmpdir(), 'x'.repeat(300));
  assert.throws(() => pinInventory(bpffs), /could not list .*\/carnx\/v\d+: ENAMETOOLONG/);
});

test.run();
