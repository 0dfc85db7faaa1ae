/**
 * Whether the node's own IP is inside a port's loadBalancerSourceRanges: kube-proxy then lets
 * traffic from the VIP itself through (the LB's backends routed straight back to the node). It
 * is the one fact of a node that a port's rules read in every mode, asked for every port of
 * every node of a big cluster: CIDRs are parsed once per port, the answer once per port and node.
 */
import { type Cidr, cidrContains, parseCIDR } from '../util/ip.js';
import type { ServicePortInfo } from './types.js';

export class SourceRangeCheck {
  readonly #ranges = new WeakMap<ServicePortInfo, Cidr[]>();
  #nodeIP = '';
  #answers = new WeakMap<ServicePortInfo, boolean>();

  /** Whether `nodeIP` is inside one of the port's loadBalancerSourceRanges (false when it has no ranges or no VIP). */
  allowsNode(info: ServicePortInfo, nodeIP: string): boolean {
    if (info.loadBalancerSourceRanges.length === 0 || info.loadBalancerVIPs.length === 0) return false;
    if (nodeIP !== this.#nodeIP) {
      this.#nodeIP = nodeIP;
      this.#answers = new WeakMap();
    }
    let answer = this.#answers.get(info);
    if (answer === undefined) {
      let ranges = this.#ranges.get(info);
      if (ranges === undefined) {
        ranges = info.loadBalancerSourceRanges.map((r) => parseCIDR(r)).filter((c): c is Cidr => c !== undefined);
        this.#ranges.set(info, ranges);
      }
      answer = ranges.some((cidr) => cidrContains(cidr, nodeIP));
      this.#answers.set(info, answer);
    }
    return answer;
  }
}
