/**
 * The ipvsadm-like surface: list order, validation, counters, OVERLOAD thresholds, the dest trash,
 * the clock, and persistence templates (ip_vs_sched_persist, ip_vs_check_template).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createScheduler, type VirtualService } from '../../src/ipvs/virtual-service.js';
import { addrOf, nameOf, rows, run, serviceWith } from './schedulers/fixtures.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

test('addDest puts each new dest at the front; dests() lists front first with counters', () => {
  const vs = createScheduler('rr');
  vs.addDest({ addr: '10.244.1.1:8080', weight: 1 });
  vs.addDest({ addr: '10.244.1.2:8080', weight: 2, activeConns: 3, inactConns: 4 });
  assert.deepEqual(vs.dests(), [
    { addr: '10.244.1.2:8080', weight: 2, activeConns: 3, inactConns: 4 },
    { addr: '10.244.1.1:8080', weight: 1, activeConns: 0, inactConns: 0 },
  ]);
  vs.setWeight('10.244.1.1:8080', 0);
  assert.deepEqual(vs.dests().map((d) => d.addr), ['10.244.1.2:8080', '10.244.1.1:8080'], 'an edit does not reorder');
});

const badInput: { name: string; run: (vs: VirtualService) => unknown; code: string }[] = [
  { name: 'addr without a port', run: (vs) => vs.addDest({ addr: '10.0.0.1', weight: 1 }), code: 'KPSIM_ERR_IPVS_BAD_DEST' },
  { name: 'addr that is not an IP', run: (vs) => vs.addDest({ addr: 'pod:80', weight: 1 }), code: 'KPSIM_ERR_IPVS_BAD_DEST' },
  { name: 'port above 65535', run: (vs) => vs.addDest({ addr: '10.0.0.1:70000', weight: 1 }), code: 'KPSIM_ERR_IPVS_BAD_DEST' },
  { name: 'negative weight', run: (vs) => vs.addDest({ addr: '10.0.0.9:80', weight: -1 }), code: 'KPSIM_ERR_IPVS_BAD_DEST' },
  { name: 'weight above ipvsadm\'s 65535', run: (vs) => vs.addDest({ addr: '10.0.0.9:80', weight: 65536 }), code: 'KPSIM_ERR_IPVS_BAD_DEST' },
  { name: 'fractional weight', run: (vs) => vs.addDest({ addr: '10.0.0.9:80', weight: 1.5 }), code: 'KPSIM_ERR_IPVS_BAD_DEST' },
  { name: 'lower threshold above upper', run: (vs) => vs.addDest({ addr: '10.0.0.9:80', weight: 1, upperThreshold: 2, lowerThreshold: 3 }), code: 'KPSIM_ERR_IPVS_BAD_DEST' },
  { name: 'IPv6 dest in an IPv4 service', run: (vs) => vs.addDest({ addr: '[fd00::1]:80', weight: 1 }), code: 'KPSIM_ERR_IPVS_BAD_DEST' },
  { name: 'duplicate dest', run: (vs) => vs.addDest({ addr: '10.0.0.1:80', weight: 3 }), code: 'KPSIM_ERR_IPVS_DUPLICATE_DEST' },
  { name: 'duplicate dest written differently', run: (vs) => vs.addDest({ addr: '010.0.0.1:80', weight: 3 }), code: 'KPSIM_ERR_IPVS_DUPLICATE_DEST' },
  { name: 'removing an unknown dest', run: (vs) => vs.removeDest('10.0.0.9:80'), code: 'KPSIM_ERR_IPVS_UNKNOWN_DEST' },
  { name: 'setting the weight of an unknown dest', run: (vs) => vs.setWeight('10.0.0.9:80', 1), code: 'KPSIM_ERR_IPVS_UNKNOWN_DEST' },
  { name: 'setting a bad weight', run: (vs) => vs.setWeight('10.0.0.1:80', 70000), code: 'KPSIM_ERR_IPVS_BAD_DEST' },
  { name: 'binding to an unknown dest', run: (vs) => vs.bind('10.0.0.9:80', 'active'), code: 'KPSIM_ERR_IPVS_UNKNOWN_DEST' },
  { name: 'closing a dest with no active connection', run: (vs) => vs.close('10.0.0.1:80'), code: 'KPSIM_ERR_USAGE_BAD_FLAG' },
  { name: 'expiring a dest with no inactive connection', run: (vs) => vs.expire('10.0.0.1:80'), code: 'KPSIM_ERR_USAGE_BAD_FLAG' },
  { name: 'a client that is not an address', run: (vs) => vs.pick('client-1'), code: 'KPSIM_ERR_USAGE_BAD_FLAG' },
  { name: 'an IPv6 client of an IPv4 service', run: (vs) => vs.pick('[fd00::1]:1'), code: 'KPSIM_ERR_USAGE_BAD_FLAG' },
];

for (const c of badInput) {
  test(`bad input: ${c.name} is ${c.code}`, () => {
    const vs = createScheduler('rr');
    vs.addDest({ addr: '10.0.0.1:80', weight: 1 });
    assert.equal(codeOf(() => c.run(vs)), c.code);
    assert.deepEqual(vs.dests(), [{ addr: '10.0.0.1:80', weight: 1, activeConns: 0, inactConns: 0 }], 'state unchanged');
  });
}

test('bad options are usage errors', () => {
  for (const opts of [
    { flags: ['sh-bogus'] },
    { persistence: { timeoutSeconds: 0 } },
    { persistence: { timeoutSeconds: 60, netmask: '255.0.255.0' } },
    { persistence: { timeoutSeconds: 60, netmask: 64 } },
    { address: '10.96.0.1' },
  ]) {
    assert.equal(codeOf(() => createScheduler('rr', opts)), 'KPSIM_ERR_USAGE_BAD_FLAG', JSON.stringify(opts));
  }
  assert.equal(codeOf(() => createScheduler('rr', { now: () => 5 }).advance(1)), 'KPSIM_ERR_USAGE_BAD_FLAG');
  // A scheduler's flags belong to it: sh-port on an mh service (or mh-port on sh) is refused.
  assert.equal(codeOf(() => createScheduler('mh', { flags: ['sh-port'] })), 'KPSIM_ERR_USAGE_BAD_FLAG');
  assert.equal(codeOf(() => createScheduler('rr', { flags: ['mh-fallback'] })), 'KPSIM_ERR_USAGE_BAD_FLAG');
  assert.equal(codeOf(() => createScheduler('sh', { flags: ['sh-port', 'sh-fallback'] })), undefined);
  assert.equal(codeOf(() => createScheduler('twos', { rng: 4 as unknown as () => number })), 'KPSIM_ERR_USAGE_BAD_FLAG');
});

test('IPv6 dests are written "[addr]:port" and normalised', () => {
  const vs = createScheduler('rr');
  vs.addDest({ addr: '[fd00:0:0::1]:80', weight: 1 });
  vs.addDest({ addr: '[FD00::2]:80', weight: 1 });
  assert.deepEqual(vs.dests().map((d) => d.addr), ['[fd00::2]:80', '[fd00::1]:80']);
  assert.equal(vs.pick('[2001:db8::7]:5555'), '[fd00::2]:80');
  vs.removeDest('[fd00::2]:80');
  assert.equal(vs.pick(), '[fd00::1]:80');
});

test('connect binds active or inactive; close, activate, expire and bind move the counters', () => {
  const vs = serviceWith('rr', rows('A1'));
  vs.connect('1.1.1.1:1');
  vs.connect('1.1.1.1:2', 'inactive');
  vs.bind(addrOf('A'), 'active');
  assert.deepEqual(vs.dests()[0], { addr: addrOf('A'), weight: 1, activeConns: 2, inactConns: 1 });
  vs.close(addrOf('A'));
  assert.deepEqual(vs.dests()[0], { addr: addrOf('A'), weight: 1, activeConns: 1, inactConns: 2 });
  vs.activate(addrOf('A'));
  vs.expire(addrOf('A'));
  vs.expire(addrOf('A'), 'active');
  assert.deepEqual(vs.dests()[0], { addr: addrOf('A'), weight: 1, activeConns: 1, inactConns: 0 });
  assert.equal(vs.connect(), addrOf('A'));
  assert.equal(createScheduler('rr').connect(), undefined, 'no dest: nothing is bound');
});

test('pick does not change counters', () => {
  const vs = serviceWith('lc', rows('A1 B1'));
  for (let i = 0; i < 5; i++) assert.equal(vs.pick(), addrOf('B'));
  assert.deepEqual(vs.dests().map((d) => d.activeConns + d.inactConns), [0, 0]);
});

test('thresholds: OVERLOAD at the upper threshold; re-adding with a higher one clears the flag', () => {
  const vs = createScheduler('rr');
  vs.addDest({ addr: addrOf('A'), weight: 1 });
  vs.addDest({ addr: addrOf('B'), weight: 1, upperThreshold: 2, activeConns: 2 });
  assert.equal(run(vs, [{ pick: 3 }]), 'A A A', 'B starts at its threshold');
  // A weight edit keeps the thresholds (ipvsadm -e -w 1 -x 2): still OVERLOAD.
  vs.setWeight(addrOf('B'), 1);
  assert.equal(nameOf(vs.pick()), 'A');
  // B comes back from the trash with its 2 connections. The same threshold leaves the flag
  // (u_threshold is not above the old one); a higher one clears it.
  vs.removeDest(addrOf('B'));
  vs.addDest({ addr: addrOf('B'), weight: 1, upperThreshold: 2 });
  assert.equal(nameOf(vs.pick()), 'A');
  vs.removeDest(addrOf('B'));
  vs.addDest({ addr: addrOf('B'), weight: 1, upperThreshold: 5 });
  assert.deepEqual(vs.dests()[0], { addr: addrOf('B'), weight: 1, activeConns: 2, inactConns: 0 });
  assert.equal(nameOf(vs.pick()), 'B');
});

test('a deleted dest with connections waits in the trash: its counters expire and it comes back with them', () => {
  const vs = serviceWith('lc', rows('A1 B1'));
  vs.connect();
  vs.connect();
  vs.connect();
  assert.deepEqual(vs.dests().map((d) => [d.addr, d.activeConns]), [[addrOf('B'), 2], [addrOf('A'), 1]]);
  vs.removeDest(addrOf('B'));
  assert.deepEqual(vs.dests().map((d) => d.addr), [addrOf('A')]);
  vs.close(addrOf('B'));
  vs.expire(addrOf('B'));
  vs.addDest({ addr: addrOf('B'), weight: 1 });
  assert.deepEqual(vs.dests()[0], { addr: addrOf('B'), weight: 1, activeConns: 1, inactConns: 0 });
  // Once a deleted dest has nothing left it is gone for good: re-adding starts from zero.
  vs.expire(addrOf('B'), 'active');
  vs.removeDest(addrOf('B'));
  assert.equal(codeOf(() => vs.expire(addrOf('B'))), 'KPSIM_ERR_IPVS_UNKNOWN_DEST');
});

test('the default clock starts at 0 and moves only with advance', () => {
  const vs = createScheduler('rr');
  assert.equal(vs.now(), 0);
  vs.advance(2.5);
  vs.advance(0);
  assert.equal(vs.now(), 2.5);
  let t = 100;
  const injected = createScheduler('rr', { now: () => t });
  t = 150;
  assert.equal(injected.now(), 150);
});

// ---- persistence ----

const P = (timeoutSeconds: number, extra: object = {}) => ({ persistence: { timeoutSeconds, ...extra } });

test('persistence: a template is reused without calling the scheduler, so the rr cursor does not move', () => {
  const sticky = serviceWith('rr', rows('A1 B1'), P(300));
  const plain = serviceWith('rr', rows('A1 B1'));
  const clients = ['10.1.0.1:1000', '10.1.0.2:1000', '10.1.0.1:2000', '10.1.0.3:1000'];
  assert.deepEqual(clients.map((c) => nameOf(sticky.pick(c))), ['B', 'A', 'B', 'B']);
  assert.deepEqual(clients.map((c) => nameOf(plain.pick(c))), ['B', 'A', 'B', 'A']);
});

test('persistence: the template expires timeoutSeconds after the last new connection through it', () => {
  const at = (advance: number[]): string => {
    const vs = serviceWith('rr', rows('A1 B1'), P(10));
    const out = [nameOf(vs.pick('10.1.0.1:1'))];
    for (const seconds of advance) {
      vs.advance(seconds);
      out.push(nameOf(vs.pick('10.1.0.1:2')));
    }
    return out.join(' ');
  };
  assert.equal(at([9.999]), 'B B');
  assert.equal(at([10]), 'B A', 'expired at exactly 10 s: rescheduled, rr moves on to A');
  assert.equal(at([9, 9, 9]), 'B B B B', 'each new connection re-arms the timer');
  assert.equal(at([9, 10]), 'B B A');
});

test('persistence: the netmask groups clients (-M 255.255.255.0 or a prefix length)', () => {
  for (const netmask of ['255.255.255.0', 24, '24']) {
    const vs = serviceWith('rr', rows('A1 B1'), P(300, { netmask }));
    const got = ['10.1.0.1:1', '10.1.0.200:1', '10.1.1.1:1', '10.1.0.77:9'].map((c) => nameOf(vs.pick(c)));
    assert.deepEqual(got, ['B', 'B', 'A', 'B'], `netmask ${String(netmask)}`);
    assert.deepEqual(vs.templates().map((t) => [t.client, nameOf(t.addr)]), [['10.1.0.0', 'B'], ['10.1.1.0', 'A']]);
  }
});

test('persistence: IPv6 clients are grouped by prefix length', () => {
  const vs = createScheduler('rr', { address: '[fd00:96::1]:80', ...P(300, { netmask: 64 }) });
  vs.addDest({ addr: '[fd00::1]:80', weight: 1 });
  vs.addDest({ addr: '[fd00::2]:80', weight: 1 });
  assert.equal(vs.pick('[2001:db8:0:1::5]:1'), '[fd00::2]:80');
  assert.equal(vs.pick('[2001:db8:0:1::6]:1'), '[fd00::2]:80');
  assert.equal(vs.pick('[2001:db8:0:2::5]:1'), '[fd00::1]:80');
  assert.deepEqual(vs.templates().map((t) => t.client), ['2001:db8:0:1::', '2001:db8:0:2::']);
});

test('persistence: a template to a weight-0 dest is kept by default and dropped with expire_quiescent_template', () => {
  const keep = serviceWith('rr', rows('A1 B1'), P(300));
  const drop = serviceWith('rr', rows('A1 B1'), { ...P(300), sysctl: { expireQuiescentTemplate: true } });
  for (const vs of [keep, drop]) {
    assert.equal(nameOf(vs.pick('10.1.0.1:1')), 'B');
    vs.setWeight(addrOf('B'), 0);
  }
  assert.equal(nameOf(keep.pick('10.1.0.1:2')), 'B', 'the client keeps going to the quiesced dest');
  assert.equal(nameOf(drop.pick('10.1.0.1:2')), 'A');
  assert.equal(nameOf(keep.pick('10.1.0.2:1')), 'A', 'new clients are not sent to weight 0');
});

test('persistence: deleting the dest invalidates its templates, unless it is re-added first', () => {
  const deleted = serviceWith('rr', rows('A1 B1'), P(300));
  const readded = serviceWith('rr', rows('A1 B1'), P(300));
  for (const vs of [deleted, readded]) {
    assert.equal(nameOf(vs.pick('10.1.0.1:1')), 'B');
    vs.removeDest(addrOf('B'));
  }
  assert.equal(nameOf(deleted.pick('10.1.0.1:2')), 'A');
  // The template still holds the deleted dest, so re-adding it finds it in the trash (the same
  // dest, flagged available again) and the template is valid once more.
  readded.addDest({ addr: addrOf('B'), weight: 1 });
  assert.equal(nameOf(readded.pick('10.1.0.1:2')), 'B');
});

test('persistence: no dest available means no template and no connection', () => {
  const vs = serviceWith('rr', rows('A0'), P(300));
  assert.equal(vs.connect('10.1.0.1:1'), undefined);
  assert.deepEqual(vs.templates(), []);
  vs.setWeight(addrOf('A'), 1);
  assert.equal(nameOf(vs.connect('10.1.0.1:1')), 'A');
  assert.equal(vs.templates().length, 1);
});
