/**
 * The index behind lc, wlc, sed and nq must pick exactly what the kernel's linear scan picks,
 * ties included, under any sequence of front inserts, deletes, weight changes, counter changes and
 * OVERLOAD flips. The scans below are written straight from ip_vs_lc.c, ip_vs_wlc.c, ip_vs_sed.c
 * and ip_vs_nq.c and compared after every operation of seeded random sequences.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DestList, type LinkedDest } from '../../../src/ipvs/schedulers/dest-list.js';
import { seededRng, type Rng } from '../../../src/util/random.js';
import { getScheduler } from '../../../src/ipvs/schedulers/registry.js';
import type { Dest, ServiceScheduler } from '../../../src/ipvs/schedulers/types.js';
import { createScheduler } from '../../../src/ipvs/virtual-service.js';

const overhead = (d: { activeConns: number; inactConns: number }): number => d.activeConns * 256 + d.inactConns;

interface Counted {
  addr: string;
  weight: number;
  activeConns: number;
  inactConns: number;
  overloaded?: boolean;
}

const scans: Record<string, (list: readonly Counted[]) => string | undefined> = {
  lc(list) {
    let least: Counted | undefined;
    for (const d of list) {
      if (d.overloaded || d.weight === 0) continue;
      if (least === undefined || overhead(d) < overhead(least)) least = d;
    }
    return least?.addr;
  },
  wlc(list) {
    const first = list.findIndex((d) => !d.overloaded && d.weight > 0);
    if (first < 0) return undefined;
    let least = list[first]!;
    for (const d of list.slice(first + 1)) {
      if (d.overloaded) continue;
      if (overhead(least) * d.weight > overhead(d) * least.weight) least = d;
    }
    return least.addr;
  },
  sed(list) {
    const first = list.findIndex((d) => !d.overloaded && d.weight > 0);
    if (first < 0) return undefined;
    let least = list[first]!;
    for (const d of list.slice(first + 1)) {
      if (d.overloaded) continue;
      if ((least.activeConns + 1) * d.weight > (d.activeConns + 1) * least.weight) least = d;
    }
    return least.addr;
  },
  nq(list) {
    let least: Counted | undefined;
    for (const d of list) {
      if (d.overloaded || d.weight === 0) continue;
      if (d.activeConns === 0) return d.addr;
      if (least === undefined || (least.activeConns + 1) * d.weight > (d.activeConns + 1) * least.weight) least = d;
    }
    return least?.addr;
  },
};

const flow = { srcFold: 0, srcPort: 0, dstIP: '0.0.0.0', dstFold: 0 };

function newDest(n: number, weight: number): LinkedDest {
  return {
    addr: `10.1.${n >> 8}.${n & 255}:80`, ip: `10.1.${n >> 8}.${n & 255}`, port: 80, family: 4, ipFold: 0,
    weight, lastWeight: weight, activeConns: 0, inactConns: 0, persistConns: 0, upperThreshold: 0, lowerThreshold: 0,
    overloaded: false, available: true, seq: n, heapIndex: -1,
  } as LinkedDest;
}

function randomInt(rng: Rng, below: number): number {
  return Math.floor(rng() * below);
}

/** One random operation on the list, with the hook the virtual service would call. */
function step(rng: Rng, list: DestList, sched: ServiceScheduler, counter: { next: number }, maxWeight: number): string {
  const dests = list.toArray();
  const dest = dests[randomInt(rng, dests.length)];
  const roll = rng();
  if (dest === undefined || roll < 0.12) {
    const added = newDest(counter.next++, randomInt(rng, maxWeight + 1));
    list.addFront(added);
    sched.addDest?.(added);
    return `add ${added.addr} w${added.weight}`;
  }
  if (roll < 0.18) {
    dest.available = false;
    list.remove(dest);
    sched.delDest?.(dest);
    return `del ${dest.addr}`;
  }
  if (roll < 0.28) {
    dest.weight = randomInt(rng, maxWeight + 1);
    if (dest.weight !== 0) dest.lastWeight = dest.weight;
    sched.updDest?.(dest);
    return `weight ${dest.addr} ${dest.weight}`;
  }
  if (roll < 0.33) {
    dest.overloaded = !dest.overloaded;
    sched.countersChanged?.(dest);
    return `overload ${dest.addr} ${dest.overloaded}`;
  }
  const field = rng() < 0.5 ? 'activeConns' : 'inactConns';
  const delta = rng() < 0.55 || dest[field] === 0 ? 1 : -1;
  dest[field] += delta;
  sched.countersChanged?.(dest);
  return `${field} ${dest.addr} ${delta > 0 ? '+1' : '-1'}`;
}

for (const name of ['lc', 'wlc', 'sed', 'nq']) {
  for (const { seed, maxWeight, ops } of [{ seed: 1, maxWeight: 3, ops: 3000 }, { seed: 2, maxWeight: 1, ops: 3000 }, { seed: 3, maxWeight: 100, ops: 3000 }]) {
    test(`${name}: the index picks what the kernel's scan picks (seed ${seed}, weights 0-${maxWeight})`, () => {
      const rng = seededRng(seed);
      const list = new DestList();
      const counter = { next: 1 };
      const sched = getScheduler(name).init({ dests: list, flags: new Set() }, { now: () => 0, rng });
      const history: string[] = [];
      for (let i = 0; i < ops; i++) {
        history.push(step(rng, list, sched, counter, maxWeight));
        const want = scans[name]!(list.toArray());
        const got = sched.schedule(flow)?.addr;
        if (got !== want) {
          assert.fail(`after op ${i}: got ${String(got)}, the scan picks ${String(want)}\nlast ops:\n${history.slice(-8).join('\n')}\n` +
            `list: ${list.toArray().map((d: Dest) => `${d.addr} w${d.weight} a${d.activeConns} i${d.inactConns}${d.overloaded ? ' OVL' : ''}`).join(', ')}`);
        }
      }
    });
  }
}

test('the index stays right at thousands of dests with churn', () => {
  const rng = seededRng(7);
  const list = new DestList();
  const sched = getScheduler('wlc').init({ dests: list, flags: new Set() }, { now: () => 0, rng });
  for (let n = 1; n <= 3000; n++) {
    const dest = newDest(n, 1 + randomInt(rng, 3));
    list.addFront(dest);
    sched.addDest?.(dest);
  }
  const dests = list.toArray();
  for (let i = 0; i < 2000; i++) {
    const picked = sched.schedule(flow)!;
    assert.equal(picked.addr, scans.wlc!(dests), `pick ${i}`);
    picked.activeConns++;
    sched.countersChanged?.(picked);
    const other = dests[randomInt(rng, dests.length)]!;
    if (other.activeConns > 0) {
      other.activeConns--;
      other.inactConns++;
      sched.countersChanged?.(other);
    }
  }
});

for (const name of ['lc', 'wlc', 'sed', 'nq']) {
  test(`${name}: through the virtual service, picks match the scan over dests() in list order`, () => {
    const rng = seededRng(11);
    const vs = createScheduler(name);
    let next = 1;
    for (let i = 0; i < 2000; i++) {
      const dests = vs.dests();
      const roll = rng();
      const target = dests[randomInt(rng, dests.length)];
      if (target === undefined || roll < 0.05) vs.addDest({ addr: `10.2.0.${next++}:80`, weight: randomInt(rng, 4) });
      else if (roll < 0.08) vs.removeDest(target.addr);
      else if (roll < 0.15) vs.setWeight(target.addr, randomInt(rng, 4));
      else if (roll < 0.6) vs.connect(undefined, rng() < 0.5 ? 'active' : 'inactive');
      else if (roll < 0.75 && target.activeConns > 0) vs.close(target.addr);
      else if (target.inactConns > 0) vs.expire(target.addr, 'inactive');
      else if (target.activeConns > 0) vs.expire(target.addr, 'active');
      assert.equal(vs.pick(), scans[name]!(vs.dests()), `op ${i}`);
    }
  });
}
