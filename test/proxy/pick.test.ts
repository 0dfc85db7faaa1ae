/**
 * Retried dials: which endpoints a retry avoids, and that avoiding them works through every
 * kind of IPVS scheduler, including persistence (the client's affinity moves to the new one).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createScheduler } from '../../src/ipvs/virtual-service.js';
import { connectAvoiding, destsToAvoid } from '../../src/proxy/pick.js';

const A = '10.180.0.1:8080';
const B = '10.180.0.2:8080';
const C = '10.180.0.3:8080';

const avoidCases: { name: string; candidates: string[]; tried: string[]; want: string[] }[] = [
  { name: 'first attempt avoids nothing', candidates: [A, B, C], tried: [], want: [] },
  { name: 'after one failure, that one', candidates: [A, B, C], tried: [A], want: [A] },
  { name: 'after two failures, both', candidates: [A, B, C], tried: [A, B], want: [A, B] },
  { name: 'all tried: only the last, so it is not tried twice in a row', candidates: [A, B, C], tried: [A, B, C], want: [C] },
  { name: 'two endpoints, both tried: the last', candidates: [A, B], tried: [A, B, A], want: [A] },
  { name: 'one endpoint: retry it', candidates: [A], tried: [A], want: [] },
  { name: 'a tried endpoint that has since gone is not listed', candidates: [B, C], tried: [A], want: [] },
];

for (const c of avoidCases) {
  test(`destsToAvoid: ${c.name}`, () => {
    assert.deepEqual(destsToAvoid(c.candidates, c.tried), c.want);
  });
}

for (const scheduler of ['rr', 'wrr', 'lc', 'wlc', 'sh', 'mh', 'sed', 'nq', 'dh', 'lblc']) {
  test(`connectAvoiding with ${scheduler}: never the avoided dest, weights restored, counted once`, () => {
    const vs = createScheduler(scheduler, { address: '172.30.0.41:80' });
    for (const addr of [A, B, C]) vs.addDest({ addr, weight: 1 });
    const first = vs.pick('10.0.0.7');
    assert.ok(first);
    const got = connectAvoiding(vs, '10.0.0.7', [first]);
    assert.ok(got === undefined || got !== first, `${scheduler} chose ${got} although ${first} was avoided`);
    assert.deepEqual(vs.dests().map((d) => d.weight), [1, 1, 1]);
    assert.equal(vs.dests().reduce((n, d) => n + d.activeConns, 0), got === undefined ? 0 : 1);
  });
}

test('connectAvoiding moves a persistent client to the new dest (the userspace affinity reset)', () => {
  const vs = createScheduler('rr', { address: '172.30.0.41:80', persistence: { timeoutSeconds: 60 }, sysctl: { expireQuiescentTemplate: true } });
  for (const addr of [A, B, C]) vs.addDest({ addr, weight: 1 });
  const sticky = vs.pick('10.0.0.7');
  assert.equal(vs.pick('10.0.0.7'), sticky, 'persistence holds');
  const moved = connectAvoiding(vs, '10.0.0.7', [sticky!]);
  assert.ok(moved && moved !== sticky);
  assert.equal(vs.pick('10.0.0.7'), moved, 'the client now sticks to the dest the retry reached');
  assert.deepEqual(vs.templates().map((t) => [t.client, t.addr]), [['10.0.0.7', moved]]);
});

test('connectAvoiding with nothing else left returns undefined and changes nothing', () => {
  const vs = createScheduler('rr');
  vs.addDest({ addr: A, weight: 1 });
  assert.equal(connectAvoiding(vs, '10.0.0.7', [A]), undefined);
  assert.deepEqual(vs.dests(), [{ addr: A, weight: 1, activeConns: 0, inactConns: 0 }]);
});
