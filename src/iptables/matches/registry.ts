/**
 * The match modules kpsim reads, by the names `-m` loads them by. Adding a module is a file
 * beside this one (see module.ts) and a line in MODULES.
 */
import { addrtype } from './addrtype.js';
import { comment } from './comment.js';
import { conntrack } from './conntrack.js';
import { mark } from './mark.js';
import type { MatchModule, ModuleOptions } from './module.js';
import { multiport } from './multiport.js';
import { nfacct } from './nfacct.js';
import { other } from './other.js';
import { ports } from './ports.js';
import { recent } from './recent.js';
import { set } from './set.js';
import { statistic } from './statistic.js';

const MODULES = [comment, ports, multiport, addrtype, mark, conntrack, statistic, recent, nfacct, set, other] as const;

/** Every module, `other` (any name no module has) last. */
export const MATCH_MODULES: readonly MatchModule<MatchSpec>[] = MODULES;

/** A match as read, whatever its module: the union of what every module's reader returns. */
export type MatchSpec = ReturnType<(typeof MODULES)[number]['read']>;

type AnyMatchModule = MatchModule<MatchSpec>;

const BY_NAME = new Map<string, { readonly module: AnyMatchModule; readonly options: ModuleOptions }>();
const BY_KIND = new Map<string, AnyMatchModule>();
for (const module of MATCH_MODULES) {
  if (BY_KIND.has(module.kind)) throw new Error(`two match modules of kind ${module.kind}`);
  BY_KIND.set(module.kind, module);
  for (const [name, options] of Object.entries(module.names)) {
    if (BY_NAME.has(name)) throw new Error(`two match modules are loaded as -m ${name}`);
    BY_NAME.set(name, { module, options });
  }
}

/** The options of the module `-m name` loads; undefined for a module kpsim does not know. */
export function matchOptions(name: string): ModuleOptions | undefined {
  return BY_NAME.get(name)?.options;
}

/** The module `-m name` loads: for a name kpsim does not know, the one that keeps it as written. */
export function matchModuleNamed(name: string): AnyMatchModule {
  return BY_NAME.get(name)?.module ?? other;
}

/** The module that read `match`. */
export function matchModuleOf(match: MatchSpec): AnyMatchModule {
  return BY_KIND.get(match.kind)!;
}
