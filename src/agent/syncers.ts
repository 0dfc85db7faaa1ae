/**
 * The agent's proxy modes: one syncer per mode (see syncer.ts for what a syncer provides). The
 * agent, the CLI and the tests look the mode up here and never branch on it.
 */
import { KpsimError } from '../errors.js';
import type { ModeSyncer } from './syncer.js';
import { ipvsSyncer } from './syncers/ipvs.js';
import { iptablesSyncer } from './syncers/iptables.js';
import { nftablesSyncer } from './syncers/nftables.js';
import { userspaceSyncer } from './syncers/userspace.js';

const syncers: Readonly<Record<string, ModeSyncer>> = {
  iptables: iptablesSyncer,
  ipvs: ipvsSyncer,
  nftables: nftablesSyncer,
  userspace: userspaceSyncer,
};

/** The modes `kpsim agent --proxy-mode` takes, in the order --help lists them. */
export const AGENT_MODES: readonly string[] = Object.keys(syncers);

export function isAgentMode(mode: string): boolean {
  return Object.hasOwn(syncers, mode);
}

export function modeSyncer(mode: string, path = '--proxy-mode'): ModeSyncer {
  const syncer = syncers[mode];
  if (syncer === undefined || !Object.hasOwn(syncers, mode)) {
    throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `${path}: ${JSON.stringify(mode)} is not one of ${AGENT_MODES.join(', ')}`);
  }
  return syncer;
}
