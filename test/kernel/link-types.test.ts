// Interfaces without an Ethernet header (a real tun device): selected by name, never attached, said once in the log.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startAgent, testBpffs } from '../fixtures/agent-process.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { pinTree, xdpOn } from '../fixtures/kernel-objects.js';
import { ip, VethPair, vethPair } from '../fixtures/netns.js';
import { requireRoot } from '../fixtures/privileges.js';
import { reported } from '../fixtures/hooks.js';

const LinkTypes = suite('link types');
const cleanups = new Cleanups();

LinkTypes.before(reported(() => requireRoot('tun devices')));
LinkTypes.after.each(() => cleanups.run());

const SKIP = 'not counting on interface: its link type has no Ethernet header';

LinkTypes('a tun device included by name is not attached, logged once, and the agent counts on', async () => {
  const pair = vethPair(cleanups, 'u');
  const tun = `cxtun${process.pid % 100000}`;
  cleanups.add(tun, (name) => ip('link', 'del', name));
  ip('tuntap', 'add', 'dev', tun, 'mode', 'tun');
  ip('link', 'set', tun, 'up');
  const later = new VethPair('u'); // created once the agent runs: its attach proves rescans went on
  const bpffs = testBpffs(cleanups, 'linktype');
  const agent = startAgent(cleanups, bpffs, pair.host, [
    '--interfaces-include',
    tun,
    '--interfaces-include',
    later.host,
    '--xdp-mode',
    'generic',
  ]);
  const skipped = await agent.waitForMsg(SKIP, { interface: tun });
  assert.is(skipped.level, 'info');
  assert.is(skipped.linkType, 65534);
  assert.is(skipped.linkTypeName, 'none');
  await agent.waitForMsg('attached', { interface: pair.host });
  cleanups.add(later, (p) => p.destroy()).create();
  await agent.waitForMsg('attached', { interface: later.host });
  await agent.waitForMsg('attached', { interface: later.host, direction: 'transmit' });
  assert.is(agent.lines.filter((l) => l.msg === SKIP).length, 1, 'one line, not one per rescan');
  assert.is(agent.lines.filter((l) => l.interface === tun && l.msg !== SKIP).length, 0, 'nothing else about it');
  assert.is(xdpOn(tun), undefined, 'no XDP program on the tun device');
  assert.equal(
    pinTree(bpffs.path).filter((p) => p.includes(tun)),
    [],
    'no pins for it',
  );
  assert.is(agent.child.exitCode, null, 'the agent runs on');
  assert.is((await agent.stop()).code, 0);
  assert.equal(pinTree(bpffs.path), []);
});

LinkTypes.run();
