/**
 * endpoint-: hairpin masquerade (a pod reaching itself through the service), affinity, DNAT,
 * as kube-proxy's nftables syncProxyRules writes one chain per reachable endpoint of a port.
 *
 * A cluster has one of these per endpoint (150k at 5,000 nodes), made once and shared by the
 * tables of every node (shared-work.ts). Most of those tables are only rendered and counted,
 * which needs the rules' words, not rule objects: so a chain keeps what its rules are made of
 * (the port and the endpoint, objects that exist anyway) and makes its rule objects the first
 * time something reads `rules` (a tracer, a kernel model). Three small objects per endpoint fewer
 * to allocate and to copy through the young generation while a big table is built.
 */
import { protocolWord } from '../iptables/names.js';
import type { EndpointInfo, ServicePortInfo } from '../tracker/types.js';
import { AFFINITY_PREFIX, ENDPOINT_PREFIX, MARK_MASQ_CHAIN, endpointNames } from './names.js';
import type { NftChain, NftRule, TextWriter } from './types.js';

export class EndpointChain implements NftChain {
  readonly name: string;
  readonly #ipX: 'ip' | 'ip6';
  readonly #svc: ServicePortInfo;
  readonly #ep: EndpointInfo;
  #rules: NftRule[] | undefined;

  constructor(name: string, ipX: 'ip' | 'ip6', svc: ServicePortInfo, ep: EndpointInfo) {
    this.name = name;
    this.#ipX = ipX;
    this.#svc = svc;
    this.#ep = ep;
  }

  get rules(): NftRule[] {
    return (this.#rules ??= endpointRules(this.#ipX, this.#svc, this.#ep));
  }

  get ruleCount(): number {
    return this.#rules !== undefined ? this.#rules.length : this.#svc.sessionAffinityTimeoutSeconds > 0 ? 3 : 2;
  }

  /**
   * Each rule's line written onto `out`: `ruleHead` ("add rule <table> "), the chain's name, the
   * rule's text, a newline. False, and nothing written, once the rule objects are made: they
   * are then what the chain holds.
   */
  writeRuleLines(ruleHead: string, out: TextWriter): boolean {
    if (this.#rules !== undefined) return false;
    const saddr = this.#ipX === 'ip' ? ' ip saddr ' : ' ip6 saddr ';
    const ep = this.#ep;
    const name = this.name;
    // Each piece a constant or a string that exists: nothing is made per line.
    out.write(ruleHead);
    out.write(name);
    out.write(saddr);
    out.write(ep.ip);
    out.write(MASQUERADE_TAIL);
    if (this.#svc.sessionAffinityTimeoutSeconds > 0) {
      // The affinity set is named after the chain (names.ts): no name looked up or hashed again.
      out.write(ruleHead);
      out.write(name);
      out.write(' update @');
      out.write(AFFINITY_PREFIX);
      out.write(name.slice(ENDPOINT_PREFIX.length));
      out.write(this.#ipX === 'ip' ? ' { ip saddr }\n' : ' { ip6 saddr }\n');
    }
    out.write(ruleHead);
    out.write(name);
    out.write(dnatHead(this.#svc.protocol));
    out.write(ep.endpoint);
    out.write('\n');
    return true;
  }
}

const MASQUERADE_TAIL = ` jump ${MARK_MASQ_CHAIN}\n`;
const DNAT_HEADS = new Map<string, string>();

/** " meta l4proto tcp dnat to " (after the chain name), made once per protocol. */
function dnatHead(protocol: ServicePortInfo['protocol']): string {
  let head = DNAT_HEADS.get(protocol);
  if (head === undefined) DNAT_HEADS.set(protocol, (head = ` meta l4proto ${protocolWord(protocol)} dnat to `));
  return head;
}

/**
 * The rules of an endpoint chain. Their texts are joined flat (a template literal makes a tree
 * of concatenations, twice the bytes) and the array has no room to grow (an array grown by push
 * has room for 16).
 */
export function endpointRules(ipX: 'ip' | 'ip6', svc: ServicePortInfo, ep: EndpointInfo): NftRule[] {
  const masquerade: NftRule = { text: [ipX, ' saddr ', ep.ip, ' jump ', MARK_MASQ_CHAIN].join('') };
  const dnat: NftRule = { text: ['meta l4proto ', protocolWord(svc.protocol), ' dnat to ', ep.endpoint].join('') };
  return svc.sessionAffinityTimeoutSeconds > 0 ? [masquerade, { text: affinityRuleText(ipX, svc, ep) }, dnat] : [masquerade, dnat];
}

function affinityRuleText(ipX: 'ip' | 'ip6', svc: ServicePortInfo, ep: EndpointInfo): string {
  return `update @${endpointNames(svc.svcPortName, ep.endpoint).affinitySet} { ${ipX} saddr }`;
}

/** How many rules a chain holds, without making an endpoint chain's rule objects. */
export function ruleCountOf(chain: NftChain): number {
  return chain instanceof EndpointChain ? chain.ruleCount : chain.rules.length;
}
