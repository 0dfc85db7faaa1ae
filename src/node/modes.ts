/**
 * The table of proxy modes: every place that compiles, renders, traces or simulates a node in
 * some mode looks the mode up here (see mode-driver.ts for what a driver does).
 */
import { KpsimError } from '../errors.js';
import type { ProxyConfig } from '../model/types.js';
import type { CompiledNode, DumpReader, ModeDriver, RulesMode } from './mode-driver.js';
import { iptablesDriver, iptablesDumpReader } from './modes/iptables.js';
import { ipvsDriver } from './modes/ipvs.js';
import { nftablesDriver, nftablesDumpReader } from './modes/nftables.js';

// Each driver is typed for its own compiled node; the table hands them out for any.
const drivers: Readonly<Record<RulesMode, ModeDriver<CompiledNode>>> = {
  iptables: iptablesDriver as unknown as ModeDriver<CompiledNode>,
  ipvs: ipvsDriver as unknown as ModeDriver<CompiledNode>,
  nftables: nftablesDriver as unknown as ModeDriver<CompiledNode>,
};

/** The modes kpsim compiles, in the order they are listed and compared. */
export const RULES_MODES: readonly RulesMode[] = Object.keys(drivers) as RulesMode[];

/** Readers of real nodes' dumps, by the flag that names them. */
export const DUMP_READERS: readonly DumpReader[] = [iptablesDumpReader, nftablesDumpReader];

export function modeDriver(mode: RulesMode): ModeDriver<CompiledNode> {
  return drivers[mode];
}

/** The driver of what was compiled. */
export function driverOf<C extends CompiledNode>(compiled: C): ModeDriver<C> {
  return drivers[compiled.mode] as unknown as ModeDriver<C>;
}

export function isRulesMode(value: string): value is RulesMode {
  return Object.hasOwn(drivers, value);
}

/**
 * The mode to compile when none is asked for: the configuration's, when kpsim compiles it (a
 * config saying `mode: userspace` has no rules of its own: iptables mode then), else iptables,
 * kube-proxy's default on Linux.
 */
export function defaultRulesMode(config: Pick<ProxyConfig, 'mode'>): RulesMode {
  return isRulesMode(config.mode) ? config.mode : 'iptables';
}

/** A mode named by a flag or request field, or a usage error listing the modes. */
export function parseRulesMode(value: string, path: string): RulesMode {
  if (isRulesMode(value)) return value;
  throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `${path}: ${JSON.stringify(value)} is not one of ${RULES_MODES.join(', ')}`);
}
