/**
 * `-m recent` (xt_recent): named lists of addresses seen, with --set, --rcheck, --update and
 * --remove; kube-proxy's ClientIP session affinity (`--rcheck --seconds T --reap`).
 */
import { bytesToWords } from '../../util/ip.js';
import { parseAddressSpec, parseUnsigned, U32_MAX } from '../rule-values.js';
import { not, type MatchBase, type MatchModule } from './module.js';

export interface RecentMatch extends MatchBase {
  readonly kind: 'recent';
  readonly command: 'set' | 'rcheck' | 'update' | 'remove';
  readonly negated: boolean;
  readonly seconds: number | undefined;
  readonly reap: boolean;
  readonly hitcount: number | undefined;
  readonly rttl: boolean;
  readonly name: string;
  /** Address mask; undefined means all ones. */
  readonly mask: string | undefined;
  readonly side: 'source' | 'dest';
}

export const recent: MatchModule<RecentMatch> = {
  kind: 'recent',
  names: {
    recent: {
      arity: {
        '--set': 0, '--rcheck': 0, '--update': 0, '--remove': 0, '--seconds': 1, '--reap': 0,
        '--hitcount': 1, '--rttl': 0, '--name': 1, '--mask': 1, '--rsource': 0, '--rdest': 0,
      },
    },
  },

  read(reader) {
    const { problems, family } = reader;
    const commands = (['set', 'rcheck', 'update', 'remove'] as const).filter((c) => reader.option(`--${c}`) !== undefined);
    if (commands.length !== 1) problems.push('-m recent needs exactly one of --set, --rcheck, --update, --remove');
    const command = commands[0] ?? 'rcheck';
    const negated = reader.option(`--${command}`)?.negated ?? false;
    const secondsText = reader.value('--seconds');
    const hitcountText = reader.value('--hitcount');
    const seconds = secondsText === undefined ? undefined : parseUnsigned(secondsText, U32_MAX);
    const hitcount = hitcountText === undefined ? undefined : parseUnsigned(hitcountText, 255);
    if (secondsText !== undefined && seconds === undefined) problems.push(`--seconds ${secondsText}: not a number`);
    if (hitcountText !== undefined && hitcount === undefined) problems.push(`--hitcount ${hitcountText}: not a number`);
    const maskText = reader.value('--mask');
    let mask: string | undefined;
    if (maskText !== undefined) {
      const spec = parseAddressSpec(maskText);
      if (!spec || spec.family !== family || spec.prefixLength !== (family === 4 ? 32 : 128)) {
        problems.push(`--mask ${maskText}: not an IPv${family} address mask`);
      } else {
        mask = spec.text.slice(0, spec.text.indexOf('/'));
      }
    }
    const reap = reader.option('--reap') !== undefined;
    if (reap && seconds === undefined) problems.push('recent --reap needs --seconds');
    return {
      module: reader.module, implicit: reader.implicit, kind: 'recent', command, negated, seconds: seconds || undefined, reap, hitcount: hitcount || undefined,
      rttl: reader.option('--rttl') !== undefined, name: reader.value('--name') ?? 'DEFAULT', mask,
      side: reader.option('--rdest') !== undefined ? 'dest' : 'source', notes: reader.notes, other: reader.other,
    };
  },

  canonical(match, family) {
    const parts = [`${not(match.negated)}--${match.command}`];
    if (match.seconds !== undefined) parts.push(`--seconds ${match.seconds}`);
    if (match.reap) parts.push('--reap');
    if (match.hitcount !== undefined) parts.push(`--hitcount ${match.hitcount}`);
    if (match.rttl) parts.push('--rttl');
    parts.push(`--name ${match.name}`);
    parts.push(`--mask ${match.mask ?? (family === 4 ? '255.255.255.255' : 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')}`);
    parts.push(match.side === 'source' ? '--rsource' : '--rdest');
    return parts;
  },

  compile(match, checks) {
    if (match.rttl) checks.note('recent --rttl is not evaluated');
    const maskSpec = match.mask === undefined ? undefined : parseAddressSpec(match.mask);
    checks.recent({
      command: match.command, negated: match.negated, list: match.name, seconds: match.seconds, hitcount: match.hitcount,
      mask: maskSpec && maskSpec.network.some((b) => b !== 0xff) ? bytesToWords(maskSpec.network) : undefined, side: match.side,
    });
  },
};
