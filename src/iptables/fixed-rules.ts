/**
 * The chains and rules every kube-proxy sync writes whatever the services: the top-level chain
 * declarations, masquerading (KUBE-POSTROUTING, KUBE-MARK-MASQ), kubelet's anti-martian rule
 * (KUBE-FIREWALL), and the tail: the NodePort dispatcher that must end nat KUBE-SERVICES and
 * the KUBE-FORWARD rules.
 */
import { isLoopback } from '../util/ip.js';
import {
  KUBE_EXTERNAL_SERVICES,
  KUBE_FIREWALL,
  KUBE_FORWARD,
  KUBE_MARK_MASQ,
  KUBE_NODEPORTS,
  KUBE_POSTROUTING,
  KUBE_PROXY_FIREWALL,
  KUBE_SERVICES,
} from './names.js';
import { nodePortIPs } from './node-port-addresses.js';
import type { RuleSink } from './rule-sink.js';
import { CT_STATE_INVALID_DROPPED_COUNTER, type FixedChains, type SyncContext } from './sync-context.js';

/** Declare the top-level chains in kube-proxy's order: filter first, then nat. */
export function declareFixedChains<C>(out: RuleSink<C>): FixedChains<C> {
  const filterServices = out.declareChain('filter', KUBE_SERVICES);
  const filterExternalServices = out.declareChain('filter', KUBE_EXTERNAL_SERVICES);
  const filterForward = out.declareChain('filter', KUBE_FORWARD);
  const filterNodePorts = out.declareChain('filter', KUBE_NODEPORTS);
  const filterProxyFirewall = out.declareChain('filter', KUBE_PROXY_FIREWALL);
  const natServices = out.declareChain('nat', KUBE_SERVICES);
  const natNodePorts = out.declareChain('nat', KUBE_NODEPORTS);
  const natPostrouting = out.declareChain('nat', KUBE_POSTROUTING);
  const natMarkMasq = out.declareChain('nat', KUBE_MARK_MASQ);
  return { filterServices, filterExternalServices, filterForward, filterNodePorts, filterProxyFirewall, natServices, natNodePorts, natPostrouting, natMarkMasq };
}

/** The masquerade chains, and KUBE-FIREWALL when localhost node ports are on (IPv4). */
export function writeMasqueradeAndFirewallRules<C>(ctx: SyncContext<C>, fixed: FixedChains<C>): void {
  const mark = ctx.masqueradeMark;
  // Packets without the mark leave KUBE-POSTROUTING untouched.
  ctx.out.appendRule(fixed.natPostrouting, ['-m', 'mark', '!', '--mark', `${mark}/${mark}`, '-j', 'RETURN']);
  // Clear the mark so a packet that goes through the stack again is not masqueraded twice.
  ctx.out.appendRule(fixed.natPostrouting, ['-j', 'MARK', '--xor-mark', mark]);
  const masquerade = ['-m', 'comment', '--comment', 'kubernetes service traffic requiring SNAT', '-j', 'MASQUERADE'];
  if (ctx.randomFully) masquerade.push('--random-fully');
  ctx.out.appendRule(fixed.natPostrouting, masquerade);
  ctx.out.appendRule(fixed.natMarkMasq, ['-j', 'MARK', '--or-mark', mark]);

  if (ctx.family === 4 && ctx.localhostNodePorts) {
    // route_localnet (needed for localhost node ports) would let anyone reach 127.0.0.0/8
    // services on the node; this is kubelet's rule closing that hole, which kube-proxy copies.
    const firewall = ctx.out.declareChain('filter', KUBE_FIREWALL);
    ctx.out.appendRule(firewall, [
      '-m', 'comment', '--comment', 'block incoming localnet connections',
      '-d', '127.0.0.0/8',
      '!', '-s', '127.0.0.0/8',
      '-m', 'conntrack', '!', '--ctstate', 'RELATED,ESTABLISHED,DNAT',
      '-j', 'DROP',
    ]);
  }
}

const NODEPORTS_COMMENT = 'kubernetes service nodeports; NOTE: this must be the last rule in this chain';

/** The jump to KUBE-NODEPORTS: last in nat KUBE-SERVICES, after every service's rules. */
export function writeNodePortDispatch<C>(ctx: SyncContext<C>, fixed: FixedChains<C>): void {
  if (ctx.nodePortAddresses.matchAll) {
    const args = ['-m', 'comment', '--comment', NODEPORTS_COMMENT, '-m', 'addrtype', '--dst-type', 'LOCAL'];
    // Localhost node ports never work on IPv6, and on IPv4 only with route_localnet.
    if (ctx.family === 6) args.push('!', '-d', '::1/128');
    else if (!ctx.localhostNodePorts) args.push('!', '-d', '127.0.0.0/8');
    args.push('-j', KUBE_NODEPORTS);
    ctx.out.appendRule(fixed.natServices, args);
    return;
  }
  for (const ip of nodePortIPs(ctx.nodePortAddresses, ctx.state.localAddresses)) {
    if (isLoopback(ip) && (ctx.family === 6 || !ctx.localhostNodePorts)) continue;
    ctx.out.appendRule(fixed.natServices, ['-m', 'comment', '--comment', NODEPORTS_COMMENT, '-d', ip, '-j', KUBE_NODEPORTS]);
  }
}

/** KUBE-FORWARD: drop INVALID (unless conntrack is liberal), accept marked and established traffic. */
export function writeForwardRules<C>(ctx: SyncContext<C>, fixed: FixedChains<C>): void {
  if (!ctx.tcpBeLiberal) {
    // INVALID packets would otherwise reach pods and be answered with resets (kubernetes#74839).
    const drop = ['-m', 'conntrack', '--ctstate', 'INVALID'];
    if (ctx.nfacctCounters) drop.push('-m', 'nfacct', '--nfacct-name', CT_STATE_INVALID_DROPPED_COUNTER);
    drop.push('-j', 'DROP');
    ctx.out.appendRule(fixed.filterForward, drop);
  }
  const mark = ctx.masqueradeMark;
  ctx.out.appendRule(fixed.filterForward, ['-m', 'comment', '--comment', 'kubernetes forwarding rules', '-m', 'mark', '--mark', `${mark}/${mark}`, '-j', 'ACCEPT']);
  ctx.out.appendRule(fixed.filterForward, [
    '-m', 'comment', '--comment', 'kubernetes forwarding conntrack rule',
    '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED',
    '-j', 'ACCEPT',
  ]);
}
