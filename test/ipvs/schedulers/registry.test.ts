/**
 * The registry knows every scheduler the kernel ships, by the name ipvsadm prints, and an unknown
 * name is the user's error: KPSIM_ERR_IPVS_UNKNOWN_SCHEDULER naming the valid ones.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getScheduler, isSchedulerName, registerScheduler } from '../../../src/ipvs/schedulers/registry.js';
import { rr } from '../../../src/ipvs/schedulers/rr.js';
import { schedulerNames } from '../../../src/ipvs/schedulers/types.js';
import { createScheduler } from '../../../src/ipvs/virtual-service.js';

const KERNEL_SCHEDULERS = ['dh', 'fo', 'lblc', 'lblcr', 'lc', 'mh', 'nq', 'ovf', 'rr', 'sed', 'sh', 'twos', 'wlc', 'wrr'];

test('every kernel scheduler is registered under its ipvsadm name', () => {
  assert.deepEqual([...schedulerNames].sort(), KERNEL_SCHEDULERS);
  for (const name of KERNEL_SCHEDULERS) {
    assert.equal(getScheduler(name).name, name);
    assert.ok(isSchedulerName(name));
    assert.equal(createScheduler(name).scheduler, name);
  }
});

for (const name of ['foo', 'RR', 'rr ', '']) {
  test(`an unknown scheduler ${JSON.stringify(name)} is a KpsimError that lists the valid names`, () => {
    assert.throws(() => createScheduler(name), (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.equal((err as { code?: string }).code, 'KPSIM_ERR_IPVS_UNKNOWN_SCHEDULER');
      for (const valid of KERNEL_SCHEDULERS) assert.match(err.message, new RegExp(`\\b${valid}\\b`));
      return true;
    });
  });
}

test('registering a name twice is a bug (a plain Error)', () => {
  assert.throws(() => registerScheduler(rr), (err: unknown) => err instanceof Error && !('code' in err));
});
