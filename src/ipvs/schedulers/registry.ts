/**
 * The scheduler registry (net/netfilter/ipvs/ip_vs_sched.c): schedulers by the name ipvsadm prints.
 * Registering a name twice is a bug in kpsim; asking for a name the kernel does not have is the
 * user's mistake and names the valid ones.
 */
import { KpsimError, type Where } from '../../errors.js';
import { dh } from './dh.js';
import { fo } from './fo.js';
import { lblc } from './lblc.js';
import { lblcr } from './lblcr.js';
import { lc } from './lc.js';
import { mh } from './mh.js';
import { nq } from './nq.js';
import { ovf } from './ovf.js';
import { rr } from './rr.js';
import { sed } from './sed.js';
import { sh } from './sh.js';
import { twos } from './twos.js';
import { schedulerNames, type Scheduler, type SchedulerName } from './types.js';
import { wlc } from './wlc.js';
import { wrr } from './wrr.js';

const byName = new Map<string, Scheduler>();

export function registerScheduler(scheduler: Scheduler): void {
  if (byName.has(scheduler.name)) throw new Error(`scheduler ${scheduler.name} registered twice`);
  byName.set(scheduler.name, scheduler);
}

for (const scheduler of [rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos]) registerScheduler(scheduler);

export function isSchedulerName(name: string): name is SchedulerName {
  return byName.has(name);
}

/** The scheduler called `name`; KPSIM_ERR_IPVS_UNKNOWN_SCHEDULER, listing the valid names, if none. */
export function getScheduler(name: string, where: Where = {}): Scheduler {
  const scheduler = byName.get(name);
  if (scheduler === undefined) {
    throw new KpsimError(
      'KPSIM_ERR_IPVS_UNKNOWN_SCHEDULER',
      `unknown scheduler ${JSON.stringify(name)}: valid schedulers are ${schedulerNames.join(', ')}`,
      where,
    );
  }
  return scheduler;
}
