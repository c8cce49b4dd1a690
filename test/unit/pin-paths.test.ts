// Pin directory names: every name Linux accepts for an interface maps to a bpffs-safe name and back, old paths kept.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ifnameOfPinDir, interfacePins, layoutPinDir, pinDirName } from '../../src/attach/pin-paths.js';
import { pinnedInterfaceNames } from '../../src/attach/pin-sweeper.js';

/** Every character the kernel's dev_valid_name() lets into a name: any byte but NUL, '/', ':' and whitespace. */
const NAME_CHARS = Array.from({ length: 255 }, (_, i) => String.fromCharCode(i + 1)).filter((c) => !/[/:\s]/.test(c));

test('every character of an interface name survives encode and decode, and no dot reaches bpffs', () => {
  assert.ok(NAME_CHARS.includes('.') && NAME_CHARS.includes('%') && NAME_CHARS.includes('\x01'));
  const names = [
    ...NAME_CHARS.map((c) => `a${c}b`),
    ...NAME_CHARS.map((c) => c.repeat(15)),
    'eth0.100',
    'bond0.10',
    '%2E',
    '%25',
    '%%..%2e%',
    'a.b%c-d_e@f+g=h',
  ];
  for (const name of names) {
    const dir = pinDirName(name);
    assert.not.ok(dir.includes('.'), `no dot in ${JSON.stringify(dir)}`);
    assert.not.ok(dir.includes('/'), `one path component for ${JSON.stringify(name)}`);
    assert.is(ifnameOfPinDir(dir), name, `round trip of ${JSON.stringify(name)}`);
  }
  assert.is(pinDirName('sx.100'), 'sx%2E100');
  assert.is(pinDirName('a%b'), 'a%25b');
  assert.is(interfacePins('/b', 'eth0.100', 'transmit').link, join(layoutPinDir('/b'), 'eth0%2E100', 'tx_link'));
});

test('names without a dot or percent sign keep the pin directory of earlier carnx versions', () => {
  for (const name of ['eth0', 'ens5', 'bond0', 'cx1234k0h', 'br-lan_1', 'wlp0s20f3', 'x'.repeat(15)]) {
    assert.is(pinDirName(name), name);
    assert.is(ifnameOfPinDir(name), name);
    assert.is(interfacePins('/b', name).dir, join(layoutPinDir('/b'), name));
  }
});

test('pinnedInterfaceNames lists interface names, not directory names', () => {
  const bpffs = mkdtempSync(join(tmpdir(), 'carnx-pin-paths-'));
  try {
    for (const name of ['eth0', 'eth0.100', 'a%b']) mkdirSync(interfacePins(bpffs, name).dir, { recursive: true });
    assert.equal(pinnedInterfaceNames(bpffs).sort(), ['a%b', 'eth0', 'eth0.100']);
  } finally {
    rmSync(bpffs, { recursive: true, force: true });
  }
});

test.run();
