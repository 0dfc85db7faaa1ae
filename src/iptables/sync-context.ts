/**
 * The facts one kube-proxy sync works from, derived once from the ProxierState and the compile
 * options before any rule is written (the fields kube-proxy's Proxier holds, plus the
 * per-sync largeClusterMode).
 */
import type { Protocol } from '../model/types.js';
import type { EndpointInfo, ProxierState, ServicePortInfo } from '../tracker/types.js';
import type { IptablesSharedWork } from './shared-rules.js';
import type { Family } from '../util/ip.js';
import { type NodePortAddresses, nodePortAddresses } from './node-port-addresses.js';
import { ProbabilityCache } from './probability.js';
import type { RuleSink } from './rule-sink.js';
import type { Chain } from './types.js';

/** Above this many endpoints in total kube-proxy drops the per-endpoint comments. */
export const LARGE_CLUSTER_ENDPOINTS_THRESHOLD = 1000;

/** nfacct counter names (pkg/proxy/metrics). */
export const LOCALHOST_NODEPORT_ACCEPTED_COUNTER = 'localhost_nps_accepted_pkts';
export const CT_STATE_INVALID_DROPPED_COUNTER = 'ct_state_invalid_dropped_pkts';

export interface IptablesCompileOptions {
  /**
   * Add `--random-fully` to the MASQUERADE rule, as kube-proxy does when iptables supports it
   * (iptables >= 1.6.2). Default false, like kube-proxy's unit-test fixture.
   */
  randomFully?: boolean;
  /**
   * The nfacct counters exist, so kube-proxy adds `-m nfacct` matches (default true, as on a
   * node with nfacct support). iptables-restore rejects `-m nfacct` for a missing counter.
   */
  nfacct?: boolean;
  /** Fragments written for other nodes of the same cluster (shared-rules.ts): the same rules, sooner. */
  shared?: IptablesSharedWork;
  /** Write only these service ports (the fixed rules as always): for tracing one packet. */
  onlyServicePorts?: (info: ServicePortInfo) => boolean;
}

/** The fixed chains of both tables, declared before any service is written (`C`: the sink's chain handle). */
export interface FixedChains<C = Chain> {
  readonly filterServices: C;
  readonly filterExternalServices: C;
  readonly filterForward: C;
  readonly filterNodePorts: C;
  readonly filterProxyFirewall: C;
  readonly natServices: C;
  readonly natNodePorts: C;
  readonly natPostrouting: C;
  readonly natMarkMasq: C;
}

export interface SyncContext<C = Chain> {
  readonly state: ProxierState;
  readonly family: Family;
  readonly masqueradeMark: string;
  readonly masqueradeAll: boolean;
  /** The local detector's CIDR (`-s CIDR` is pod traffic), or undefined when there is no detector. */
  readonly localDetectorCIDR: string | undefined;
  /** localhostNodePorts as kube-proxy ends up using it: IPv4 only, and only if node-port addresses include loopback. */
  readonly localhostNodePorts: boolean;
  readonly nodePortAddresses: NodePortAddresses;
  readonly nfacctCounters: boolean;
  readonly randomFully: boolean;
  readonly tcpBeLiberal: boolean;
  /** More than LARGE_CLUSTER_ENDPOINTS_THRESHOLD endpoints: no comments on SVC→SEP and SEP rules. */
  readonly largeClusterMode: boolean;
  /** The node's primary IP of this family (kube-proxy's nodeIP), used for the LB source-range self rule. */
  readonly nodeIP: string;
  readonly probabilities: ProbabilityCache;
  /** Where chains and rules go. */
  readonly out: RuleSink<C>;
  /** Chains of this service port that a compile of another node wrote alike (shared-rules.ts). */
  readonly reuse?: PortChainReuse<C>;
}

/**
 * What the compile of one service port can take over from the compiles of other nodes of the
 * same cluster: chain names already hashed, and chains whose rules depend only on what is the
 * same on every node (an endpoint's KUBE-SEP chain; a policy chain over the same endpoints).
 * A chain taken over is handed to the sink's adoptChain (`C`: the sink's chain handle).
 */
export interface PortChainReuse<C = Chain> {
  /**
   * The KUBE-SEP chain name of one of the port's endpoints (names.ts endpointChainName), hashed
   * when it is new. Its parts, not a function that hashes: no closure per endpoint (150k).
   */
  endpointChainName(spn: string, protocol: Protocol, endpoint: string): string;
  /** The KUBE-SEP chain of that name written before, if any. */
  endpointChain(name: string): C | undefined;
  keepEndpointChain(chain: C): void;
  /**
   * Whether single KUBE-SEP chains are kept (endpointChain may give one): when not, only whole
   * blocks are, and a sink may write a port's KUBE-SEP chains as one block (writeEndpointChains).
   */
  readonly keepsEndpointChains: boolean;
  /** A KUBE-SVC/KUBE-SVL chain written before over the same endpoints, with or without the masquerade rule. */
  policyChain(name: string, endpoints: readonly EndpointInfo[], masquerade: boolean): C | undefined;
  keepPolicyChain(chain: C, endpoints: readonly EndpointInfo[], masquerade: boolean): void;
  /**
   * Whether the KUBE-SEP chains of exactly these endpoints were written before and are kept as
   * one block: then the caller leaves them out and the block is added for it (a big service has
   * thousands, and a Local policy gives every node its own view of the port, but not of them).
   */
  takeEndpointChains(endpoints: readonly EndpointInfo[]): boolean;
}

export function totalEndpoints(state: ProxierState): number {
  return state.endpointCount;
}

/** 1/n as kube-proxy prints it, for every sync: the strings depend on n alone. */
const PROBABILITIES = new ProbabilityCache();

export function createSyncContext<C>(state: ProxierState, options: IptablesCompileOptions, out: RuleSink<C>): SyncContext<C> {
  const family = state.family;
  const primaryNodeIP = state.nodeIPs[0];
  const npa = nodePortAddresses(state.config.nodePortAddresses, family, primaryNodeIP);
  return {
    state,
    family,
    masqueradeMark: state.masqueradeMark,
    masqueradeAll: state.config.masqueradeAll,
    localDetectorCIDR: state.localDetector?.cidrs[0],
    // The IPv6 proxier always gets false; for IPv4 the node-port addresses must include loopback.
    localhostNodePorts: family === 4 && state.config.localhostNodePorts && npa.containsIPv4Loopback,
    nodePortAddresses: npa,
    nfacctCounters: options.nfacct ?? true,
    randomFully: options.randomFully ?? false,
    tcpBeLiberal: state.config.tcpBeLiberal,
    largeClusterMode: totalEndpoints(state) > LARGE_CLUSTER_ENDPOINTS_THRESHOLD,
    // Without a node IP of this family kube-proxy falls back to the loopback address.
    nodeIP: primaryNodeIP ?? (family === 4 ? '127.0.0.1' : '::1'),
    probabilities: PROBABILITIES,
    out,
  };
}
