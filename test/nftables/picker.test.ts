/**
 * The nftables picker for the replay simulator: one numgen draw per new connection (uniform),
 * affinity sets checked in endpoint order with the kernel's timeout (an element expires
 * `timeout` seconds after its last update), closed connections lingering as in iptables mode.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KpsimError } from '../../src/errors.js';
import { replayConnections, type ConnectionEvent } from '../../src/ipvs/replay.js';
import { nftablesPicker } from '../../src/nftables/picker.js';
import { seededRng } from '../../src/util/random.js';

const ENDPOINTS = ['10.180.0.1:80', '10.180.0.2:80', '10.180.0.3:80'];

test('numgen spreads new connections evenly over the endpoints', () => {
  const events: ConnectionEvent[] = Array.from({ length: 6000 }, (_, i) => ({ kind: 'open', at: i / 100, client: `10.1.${i >> 8}.${i & 255}:4000`, durationSeconds: 1 }));
  const report = replayConnections(nftablesPicker(ENDPOINTS, { rng: seededRng(7) }), events);
  assert.equal(report.label, 'nftables numgen');
  for (const b of report.backends) assert.ok(b.received > 1850 && b.received < 2150, `${b.addr} got ${b.received} of 6000`);
  assert.equal(report.backends.reduce((a, b) => a + b.received, 0), 6000);
});

test('the same seed picks the same endpoints', () => {
  const picks = (seed: number): string[] => {
    const p = nftablesPicker(ENDPOINTS, { rng: seededRng(seed) });
    return Array.from({ length: 20 }, (_, i) => p.pick(`10.0.0.${i}:1`)!.addr);
  };
  assert.deepEqual(picks(3), picks(3));
  assert.notDeepEqual(picks(3), picks(4));
});

test('ClientIP affinity: a client sticks while it comes back within the timeout, and not after', () => {
  const picker = nftablesPicker(ENDPOINTS, { rng: seededRng(1), affinityTimeoutSeconds: 10 });
  assert.equal(picker.label, 'nftables numgen+affinity');
  const first = picker.pick('10.9.9.9:1000')!.addr;
  picker.advanceTo(9.5);
  assert.equal(picker.pick('10.9.9.9:1001')!.addr, first, 'within 10 s of the last update');
  picker.advanceTo(19);
  assert.equal(picker.pick('10.9.9.9:1002')!.addr, first, 'each connection refreshes the element');
  // 10 s after the last update the element has expired: the next pick is drawn again.
  const redraws: string[] = [];
  let at = 19;
  for (let i = 0; i < 30; i++) {
    at += 10;
    picker.advanceTo(at);
    redraws.push(picker.pick('10.9.9.9:2000')!.addr);
  }
  assert.ok(new Set(redraws).size > 1, `expired elements let numgen choose again: ${redraws.join(' ')}`);
});

test('no endpoints: refused; a bad endpoint: a usage error naming it', () => {
  assert.equal(nftablesPicker([], { rng: seededRng(1) }).pick('10.0.0.1:1'), undefined);
  assert.throws(() => nftablesPicker(['10.0.0.1'], { rng: seededRng(1) }), (e: unknown) => e instanceof KpsimError && e.path === 'endpoints[0]');
});
