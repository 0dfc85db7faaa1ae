/** `-m multiport --sports|--dports|--ports LIST` (libxt_multiport): up to 15 ports or ranges. */
import { formatPortRange, parsePortList, type PortRange } from '../rule-values.js';
import { not, type MatchBase, type MatchModule } from './module.js';
import { inRange, PORT_PROTOCOLS } from './ports.js';

export interface MultiportMatch extends MatchBase {
  readonly kind: 'multiport';
  readonly negated: boolean;
  readonly direction: 'source' | 'destination' | 'either';
  readonly ports: readonly PortRange[];
}

export const multiport: MatchModule<MultiportMatch> = {
  kind: 'multiport',
  names: {
    multiport: {
      arity: { '--sports': 1, '--dports': 1, '--ports': 1 },
      aliases: { '--source-ports': '--sports', '--destination-ports': '--dports' },
    },
  },

  read(reader) {
    const { protocol, problems } = reader;
    if (!protocol || protocol.negated || !PORT_PROTOCOLS.has(protocol.name)) {
      problems.push('-m multiport needs -p tcp, -p udp or -p sctp');
    }
    const options = reader.options;
    if (options.length !== 1) problems.push('-m multiport takes exactly one of --sports, --dports, --ports');
    const option = options[0];
    const ports = option ? parsePortList(option.values[0]!) : undefined;
    if (option && !ports) problems.push(`${option.name} ${option.values[0]}: not a list of at most 15 ports`);
    const direction = option?.name === '--sports' ? 'source' : option?.name === '--dports' ? 'destination' : 'either';
    return {
      module: reader.module, implicit: reader.implicit, kind: 'multiport', negated: option?.negated ?? false, direction, ports: ports ?? [],
      notes: reader.notes, other: reader.other,
    };
  },

  canonical(match) {
    const option = match.direction === 'source' ? '--sports' : match.direction === 'destination' ? '--dports' : '--ports';
    return [`${not(match.negated)}${option} ${match.ports.map(formatPortRange).join(',')}`];
  },

  compile(match, checks) {
    const { ports, negated, direction } = match;
    const hit = (port: number | undefined): boolean => port !== undefined && ports.some((r) => inRange(port, r));
    if (direction !== 'destination') checks.note('multiport source ports match when the packet has no source port');
    checks.test((flow, path) => {
      const found = direction === 'destination' ? hit(path.dport)
        : direction === 'source' ? (flow.sport === undefined || hit(flow.sport))
          : hit(path.dport) || flow.sport === undefined || hit(flow.sport);
      return found !== negated;
    });
  },
};
