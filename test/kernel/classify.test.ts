// BPF_PROG_TEST_RUN of carnx's XDP program on crafted frames: exact counter deltas, XDP_PASS, frame untouched.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { TRAFFIC_CLASSES } from '../../src/bpf/counter-layout.js';
import {
  arp,
  classIndex,
  ipv4,
  ipv6,
  otherEthertype,
  TCP,
  tcp,
  udp,
  verdictAt,
  ETH_P,
  type Verdict,
} from '../fixtures/frames.js';
import { catalogue } from '../fixtures/catalogue.js';
import { expectedFor } from '../fixtures/expected-counts.js';
import { LoadedProgram, XDP_PASS } from '../fixtures/loaded-program.js';
import { requireRoot } from '../fixtures/privileges.js';
import { reported } from '../fixtures/hooks.js';

function describe(v: Verdict): string {
  const c = TRAFFIC_CLASSES[v.classIndex]!;
  return `${c.network}/${c.transport} malformed=${v.malformed} flags=${v.tcpFlags} vlan=${v.vlan}`;
}

const Classify = suite('classify');
let program: LoadedProgram;

Classify.before(
  reported(() => {
    requireRoot('BPF_PROG_TEST_RUN');
    program = new LoadedProgram();
  }),
);
Classify.after(() => program?.close());

Classify('the catalogue, whole and cut at every length the truncation tests run, covers every traffic class', () => {
  // ipv4/none has no whole frame of its own: only a cut IPv4 header reaches it.
  const seen = new Set(
    catalogue().flatMap((f) => Array.from({ length: f.bytes.length - 13 }, (_, i) => verdictAt(f, 14 + i).classIndex)),
  );
  assert.equal(
    [...seen].sort((a, b) => a - b),
    TRAFFIC_CLASSES.map((c) => c.index),
  );
});

for (const frame of catalogue()) {
  Classify(`whole frame: ${frame.name}`, () => {
    let result: ReturnType<LoadedProgram['run']> | undefined;
    const delta = program.delta(() => {
      result = program.run(frame.bytes);
    });
    assert.is(result!.retval, XDP_PASS);
    assert.ok(result!.dataOut.equals(frame.bytes), 'the program must not change the frame');
    const verdict = verdictAt(frame);
    assert.equal(delta, expectedFor([{ verdict, length: frame.bytes.length }]), describe(verdict));
  });
}

Classify('every frame of the catalogue cut at every length from 14 bytes', () => {
  let runs = 0;
  for (const frame of catalogue()) {
    for (let length = 14; length <= frame.bytes.length; length++) {
      const cut = frame.bytes.subarray(0, length);
      let retval = -1;
      const delta = program.delta(() => {
        retval = program.run(cut).retval;
      });
      const verdict = verdictAt(frame, length);
      assert.is(retval, XDP_PASS, `${frame.name} cut at ${length}`);
      assert.equal(delta, expectedFor([{ verdict, length }]), `${frame.name} cut at ${length}: ${describe(verdict)}`);
      runs++;
    }
  }
  assert.ok(runs > 2000, `ran ${runs} truncations`);
});

Classify('invalid headers are malformed at their layer', () => {
  const cases: Array<{ name: string; bytes: Buffer; verdict: Verdict }> = [];
  const v4 = ipv4('ipv4 udp', udp());
  const wrongVersion = Buffer.from(v4.bytes);
  wrongVersion[14] = 0x65;
  cases.push({
    name: 'ipv4 ethertype carrying version 6',
    bytes: wrongVersion,
    verdict: { classIndex: classIndex('ipv4', 'none'), malformed: 'l3', tcpFlags: null, vlan: false },
  });
  const shortIhl = Buffer.from(v4.bytes);
  shortIhl[14] = 0x44;
  cases.push({
    name: 'ipv4 IHL 4',
    bytes: shortIhl,
    verdict: { classIndex: classIndex('ipv4', 'none'), malformed: 'l3', tcpFlags: null, vlan: false },
  });
  const longIhl = Buffer.from(v4.bytes.subarray(0, 14 + 24));
  longIhl[14] = 0x4f; // claims 60 bytes of header in a 24-byte packet
  cases.push({
    name: 'ipv4 IHL beyond the frame',
    bytes: longIhl,
    verdict: { classIndex: classIndex('ipv4', 'none'), malformed: 'l3', tcpFlags: null, vlan: false },
  });
  const v6 = ipv6('ipv6 udp', udp());
  const v6Wrong = Buffer.from(v6.bytes);
  v6Wrong[14] = 0x40;
  cases.push({
    name: 'ipv6 ethertype carrying version 4',
    bytes: v6Wrong,
    verdict: { classIndex: classIndex('ipv6', 'none'), malformed: 'l3', tcpFlags: null, vlan: false },
  });
  const t = ipv4('tcp', tcp(TCP.SYN | TCP.ACK, 8));
  const badOffset = Buffer.from(t.bytes);
  badOffset[14 + 20 + 12] = 0x30; // data offset 3 words < 5
  cases.push({
    name: 'tcp data offset 3',
    bytes: badOffset,
    verdict: { classIndex: classIndex('ipv4', 'tcp'), malformed: 'l4', tcpFlags: null, vlan: false },
  });
  const a = arp('arp', { padTo: 0 });
  const bigArp = Buffer.from(a.bytes);
  bigArp[14 + 4] = 200; // hardware address length beyond the frame
  cases.push({
    name: 'arp address lengths beyond the frame',
    bytes: bigArp,
    verdict: { classIndex: classIndex('arp', 'none'), malformed: 'l3', tcpFlags: null, vlan: false },
  });
  const threeTags = otherEthertype('three tags', ETH_P.ipv4, 46, { vlanTags: [ETH_P.qinq, ETH_P.vlan, ETH_P.vlan] });
  cases.push({
    name: 'a third VLAN tag is not walked',
    bytes: threeTags.bytes,
    verdict: { classIndex: classIndex('other', 'none'), malformed: null, tcpFlags: null, vlan: true },
  });

  for (const c of cases) {
    let retval = -1;
    const delta = program.delta(() => {
      retval = program.run(c.bytes).retval;
    });
    assert.is(retval, XDP_PASS, c.name);
    assert.equal(
      delta,
      expectedFor([{ verdict: c.verdict, length: c.bytes.length }]),
      `${c.name}: ${describe(c.verdict)}`,
    );
  }
});

Classify('frame sizes land in their bucket at every bucket edge', () => {
  const sizes = [60, 64, 65, 127, 128, 255, 256, 511, 512, 1023, 1024, 1518, 1519, 3000];
  for (const size of sizes) {
    const frame = otherEthertype(`lldp ${size}`, ETH_P.lldp, size - 14);
    const delta = program.delta(() => assert.is(program.run(frame.bytes).retval, XDP_PASS));
    assert.equal(delta, expectedFor([{ verdict: verdictAt(frame), length: size }]), `size ${size}`);
  }
});

Classify('repeat counts every repetition', () => {
  const frame = ipv4('ipv4 tcp SYN', tcp(TCP.SYN));
  const delta = program.delta(() => assert.is(program.run(frame.bytes, 1000).retval, XDP_PASS));
  const one = expectedFor([{ verdict: verdictAt(frame), length: frame.bytes.length }]);
  assert.is(delta.packets[classIndex('ipv4', 'tcp')], 1000n * one.packets[classIndex('ipv4', 'tcp')]!);
  assert.is(delta.tcpFlags[1], 1000n);
});

Classify.run();
