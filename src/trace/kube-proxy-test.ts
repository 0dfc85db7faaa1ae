/**
 * kube-proxy's own test tracer (tracePacket in pkg/proxy/iptables/proxier_test.go), reproduced
 * with its simplifications, so that kpsim's rules can be checked against the packet-flow cases
 * of kube-proxy's unit tests, output string for output string:
 *
 * - rules are read the way its fake iptables reads them (pkg/util/iptables/testing/parse.go):
 *   words, "-m MODULE" skipped, "!" negating the next known parameter, unknown words skipped;
 * - a rule matches when -s/-d (an IP compared exactly, or a CIDR), --src-type/--dst-type
 *   (LOCAL when the address is one of the node IPs, 127.0.0.1 or ::1, as strings), -p and
 *   --dport (compared as strings) all hold; a rule with --rcheck, --mark or --ctstate never
 *   matches; statistic, comment, nfacct, recent --set and the rest are taken as matching;
 * - rules without -j are skipped; KUBE-MARK-MASQ sets masq and goes on; ACCEPT, REJECT, DROP
 *   and DNAT add an output and end the chain; any other target runs that chain (a missing one
 *   does nothing), and ends the caller too unless the jump carried --probability, which is how
 *   every endpoint behind a statistic chain gets collected;
 * - nat PREROUTING runs first (kube-proxy's jump to KUBE-SERVICES when the ruleset has no
 *   PREROUTING); then the destination becomes the first output's text before its first ":"
 *   (which, as upstream, garbles an IPv6 endpoint); then filter KUBE-SERVICES,
 *   KUBE-EXTERNAL-SERVICES, KUBE-NODEPORTS and KUBE-PROXY-FIREWALL run one after the other.
 */
import { cidrContains, normalizeIP, parseCIDR } from '../util/ip.js';
import { renderRule } from '../iptables/render.js';
import type { Rule, Ruleset, TableName } from '../iptables/types.js';
import { kubeProxyJumpRules } from './default-jumps.js';

export interface KubeProxyTestPacket {
  readonly sourceIP: string;
  /** Lower-case, as the test passes it ("tcp" when the case leaves it out). */
  readonly protocol: string;
  readonly destIP: string;
  readonly destPort: number;
}

export interface KubeProxyTestMatch {
  readonly table: TableName;
  readonly chain: string;
  readonly rule: string;
  readonly target: string;
}

export interface KubeProxyTestResult {
  /** The outputs joined with ", ": "10.180.0.1:80, 10.180.2.1:80", "REJECT", "" ... */
  readonly output: string;
  readonly outputs: readonly string[];
  readonly masq: boolean;
  readonly matches: readonly KubeProxyTestMatch[];
}

const FILTER_CHAINS = ['KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-NODEPORTS', 'KUBE-PROXY-FIREWALL'];

export function traceKubeProxyTest(ruleset: Ruleset, packet: KubeProxyTestPacket, nodeIPs: readonly string[]): KubeProxyTestResult {
  const tracer = new FakeTracer(ruleset, new Set(['127.0.0.1', '::1', ...nodeIPs]));
  const port = String(packet.destPort);
  tracer.runChain('nat', 'PREROUTING', packet.sourceIP, packet.protocol, packet.destIP, port);
  let destIP = packet.destIP;
  if (tracer.outputs.length > 0) destIP = tracer.outputs[0]!.split(':')[0]!;
  for (const chain of FILTER_CHAINS) tracer.runChain('filter', chain, packet.sourceIP, packet.protocol, destIP, port);
  return { output: tracer.outputs.join(', '), outputs: tracer.outputs, masq: tracer.markMasq, matches: tracer.matches };
}

/** A parameter as the fake reads it: its value (or "" for a flag) and whether it was negated. */
interface Param {
  readonly negated: boolean;
  readonly value: string;
}

/** The fake's Rule fields: parameter name → whether it takes a value. */
const PARAMS: Readonly<Record<string, boolean>> = {
  '--comment': true, '-p': true, '-s': true, '--src-type': true, '--sport': true, '-d': true, '--dst-type': true,
  '--dport': true, '--match-set': true, '-j': true, '--random-fully': false, '--probability': true,
  '--to-destination': true, '--rcheck': false, '--mark': true, '--ctstate': true, '--name': true,
  '--seconds': true, '--set': false, '--reap': false, '--mode': true,
};

function readParams(args: readonly string[]): Map<string, Param> {
  const params = new Map<string, Param>();
  let negated = false;
  for (let w = 0; w < args.length;) {
    const word = args[w]!;
    if (word === '-m' && w < args.length - 1) {
      w += 2;
      continue;
    }
    if (word === '!') {
      negated = true;
      w++;
      continue;
    }
    const takesValue = PARAMS[word];
    if (takesValue === undefined) {
      w++;
    } else if (takesValue) {
      if (w + 1 < args.length) params.set(word, { negated, value: args[w + 1]! });
      w += 2;
    } else {
      params.set(word, { negated, value: '' });
      w++;
    }
    negated = false;
  }
  return params;
}

class FakeTracer {
  readonly outputs: string[] = [];
  readonly matches: KubeProxyTestMatch[] = [];
  markMasq = false;

  constructor(private readonly ruleset: Ruleset, private readonly localIPs: ReadonlySet<string>) {}

  private rulesOf(table: TableName, chain: string): readonly Rule[] | undefined {
    const own = this.ruleset.tables.get(table)?.chains.get(chain);
    if (own) return own.rules;
    if (table === 'nat' && chain === 'PREROUTING') return kubeProxyJumpRules(this.ruleset.family, 'nat', 'PREROUTING');
    return undefined;
  }

  /** Returns true when a terminal target was hit. */
  runChain(table: TableName, chain: string, sourceIP: string, protocol: string, destIP: string, destPort: string): boolean {
    const rules = this.rulesOf(table, chain);
    if (!rules) return false;
    for (const rule of rules) {
      const params = readParams(rule.args);
      const jump = params.get('-j');
      if (!jump) continue;
      if (!this.ruleMatches(params, sourceIP, protocol, destIP, destPort)) continue;
      this.matches.push({ table, chain, rule: renderRule(rule), target: jump.value });
      switch (jump.value) {
        case 'KUBE-MARK-MASQ':
          this.markMasq = true;
          continue;
        case 'ACCEPT': case 'REJECT': case 'DROP':
          this.outputs.push(jump.value);
          return true;
        case 'DNAT':
          this.outputs.push(params.get('--to-destination')?.value ?? '');
          return true;
        default: {
          const terminated = this.runChain(table, jump.value, sourceIP, protocol, destIP, destPort);
          if (terminated && !params.has('--probability')) return true;
        }
      }
    }
    return false;
  }

  private ruleMatches(params: ReadonlyMap<string, Param>, sourceIP: string, protocol: string, destIP: string, destPort: string): boolean {
    const source = params.get('-s');
    if (source && !addressMatches(source, sourceIP)) return false;
    const srcType = params.get('--src-type');
    if (srcType && !valueMatches(srcType, this.localIPs.has(sourceIP) ? 'LOCAL' : 'not-matched')) return false;
    const proto = params.get('-p');
    if (proto && !valueMatches(proto, protocol)) return false;
    const dest = params.get('-d');
    if (dest && !addressMatches(dest, destIP)) return false;
    const dstType = params.get('--dst-type');
    if (dstType && !valueMatches(dstType, this.localIPs.has(destIP) ? 'LOCAL' : 'not-matched')) return false;
    const dport = params.get('--dport');
    if (dport && !valueMatches(dport, destPort)) return false;
    // Anything that checks past state does not match.
    if (params.has('--rcheck') || params.has('--mark') || params.has('--ctstate')) return false;
    return true;
  }
}

function valueMatches(param: Param, value: string): boolean {
  return (param.value === value) !== param.negated;
}

/** An IP compared as an address, or a CIDR's containment; a garbled address matches nothing. */
function addressMatches(param: Param, ip: string): boolean {
  const address = normalizeIP(ip);
  let matches = false;
  if (address !== undefined) {
    if (param.value.includes('/')) {
      const cidr = parseCIDR(param.value);
      matches = cidr !== undefined && cidrContains(cidr, address);
    } else {
      matches = normalizeIP(param.value) === address;
    }
  }
  return matches !== param.negated;
}
