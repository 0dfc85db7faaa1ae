/**
 * The lab's topology, planned from one node's proxier states before anything is made (pure):
 * which namespaces, which addresses, which routes.
 *
 *   client ns                      node ns                                endpoint ns (one per pod)
 *   eth0: the client sources  --   eth0: the node's IPs (/32)
 *                                  cbr0 (bridge): pod gateway  ---------  eth0: a local pod's IPs
 *                                  fab0 (bridge): the node's IPs  ------  eth0: a remote pod's IPs
 *
 * Local endpoints hang off cbr0 as a bridge CNI wires pods (kubelet turns hairpin on for each
 * port, so that a pod reaching its own service through the node gets its packets back). Remote
 * endpoints sit behind fab0, a flat pod network in which every other node's pods are one hop
 * away, each reached by a host route, as a routed or VPC-style pod network has them; the node
 * masquerades towards them with its own IP, as it would on its uplink. An endpoint at one of
 * the node's own IPs (a host-network pod such as the API server) is served in the node
 * namespace itself. Every address is a host route (/32, /128) with its own route, so that
 * manifests whose endpoints lie outside the node's podCIDR still wire up.
 *
 * Replies come back through the node: every pod's default route is the node, the client's too,
 * and the node routes each client source back to the client link.
 */
import ipaddr from 'ipaddr.js';
import type { Protocol } from '../model/types.js';
import type { ResolvedNode } from '../tracker/proxier-state.js';
import type { ProxierState } from '../tracker/types.js';
import { type Family, cidrContains, ipFamily, normalizeIP, parseCIDR } from '../util/ip.js';

/** One port a pod serves (an endpoint of some service port). */
export interface PodPort {
  readonly ip: string;
  readonly port: number;
  readonly protocol: Protocol;
  /** "10.244.0.5:8080" */
  readonly endpoint: string;
  /** The service ports it serves (spn). */
  readonly spns: readonly string[];
}

export interface PlannedPod {
  /** Namespace name; the node namespace for a host-network endpoint. */
  readonly ns: string;
  readonly podName?: string;
  /** Its addresses, primary family first. */
  readonly ips: readonly string[];
  /** 'local': on the node's bridge; 'remote': behind the pod network; 'host': the node itself. */
  readonly placement: 'local' | 'remote' | 'host';
  /** The node's end of its veth (absent for host endpoints). */
  readonly hostInterface?: string;
  readonly ports: readonly PodPort[];
}

export interface LabNames {
  readonly prefix: string;
  readonly node: string;
  readonly client: string;
  pod(index: number): string;
}

export interface LabPlan {
  readonly names: LabNames;
  readonly families: readonly Family[];
  /** The node's IPs, primary first (both families). */
  readonly nodeIPs: readonly string[];
  /** cbr0's address per family: the first free host of the node's podCIDR (the CNI gateway). */
  readonly podGateways: Readonly<Partial<Record<Family, string>>>;
  /** fab0's address per family: the node's primary IP of that family. */
  readonly fabricAddresses: Readonly<Partial<Record<Family, string>>>;
  readonly clientSources: readonly string[];
  readonly pods: readonly PlannedPod[];
}

/** Interface names inside the lab's namespaces (each namespace has its own, so they are short and fixed). */
export const IFACES = { uplink: 'eth0', bridge: 'cbr0', fabric: 'fab0', podEth: 'eth0' } as const;

/** Addresses used when the cluster gives none of its own, from ranges meant for documentation. */
const FALLBACK_GATEWAY: Record<Family, string> = { 4: '169.254.123.1', 6: 'fd00:6b70:7369:6d::1' };
const FALLBACK_NODE: Record<Family, string> = { 4: '169.254.123.2', 6: 'fd00:6b70:7369:6d::2' };

/** A client address outside every cluster range: `kpsim lab up` gives the client this one by default. */
export const DEFAULT_CLIENT: Record<Family, string> = { 4: '100.64.0.1', 6: '2001:db8:c11e::1' };

export function labNames(prefix: string): LabNames {
  return { prefix, node: `${prefix}-node`, client: `${prefix}-client`, pod: (i) => `${prefix}-ep-${i}` };
}

export interface PlanOptions {
  /** Namespace names start with this: "kpsim-lab-<id>". */
  readonly prefix: string;
  /** Addresses the client namespace holds; default one per family (DEFAULT_CLIENT). */
  readonly clientSources?: readonly string[];
  /**
   * Which endpoints get a pod (default all). One left out is still DNATed to by the rules; its
   * packets go nowhere. For checks that send to a few services of a large cluster.
   */
  readonly placeEndpoint?: (ip: string) => boolean;
}

/**
 * Every endpoint the node's rules can DNAT to gets a place: one namespace per pod (an endpoint's
 * IPs grouped by pod name when the slices name one, so a dual-stack pod has both its addresses).
 */
export function planLab(node: ResolvedNode, states: readonly ProxierState[], opts: PlanOptions): LabPlan {
  const names = labNames(opts.prefix);
  const families = states.map((s) => s.family);
  const nodeIPs = node.ips.filter((ip) => families.includes(ipFamily(ip)!));
  const isNodeIP = new Set(nodeIPs);

  interface PodDraft { key: string; podName?: string; ips: string[]; placement: PlannedPod['placement']; ports: Map<string, { ip: string; port: number; protocol: Protocol; endpoint: string; spns: string[] }> }
  const drafts = new Map<string, PodDraft>();
  const byIP = new Map<string, PodDraft>();
  for (const state of states) {
    for (const sp of state.servicePorts) {
      for (const e of sp.categorized.allReachableEndpoints) {
        if (opts.placeEndpoint !== undefined && !opts.placeEndpoint(e.ip)) continue;
        const placement: PlannedPod['placement'] = isNodeIP.has(e.ip) ? 'host' : e.isLocal ? 'local' : 'remote';
        let draft = byIP.get(e.ip);
        if (draft === undefined) {
          const key = placement === 'host' ? 'host' : e.podName !== undefined ? `pod:${e.podName}` : `ip:${e.ip}`;
          draft = drafts.get(key);
          if (draft === undefined) {
            draft = { key, ...(e.podName !== undefined && placement !== 'host' ? { podName: e.podName } : {}), ips: [], placement, ports: new Map() };
            drafts.set(key, draft);
          }
          // A pod whose addresses disagree on locality stays where its first address put it, unless
          // one says local: a local pod must be on the bridge to be reached as the rules expect.
          if (placement === 'local' && draft.placement === 'remote') draft.placement = 'local';
          if (!draft.ips.includes(e.ip)) draft.ips.push(e.ip);
          byIP.set(e.ip, draft);
        }
        const portKey = `${sp.info.protocol}/${e.endpoint}`;
        const port = draft.ports.get(portKey) ?? { ip: e.ip, port: e.port, protocol: sp.info.protocol, endpoint: e.endpoint, spns: [] };
        if (!port.spns.includes(sp.info.spn)) port.spns.push(sp.info.spn);
        draft.ports.set(portKey, port);
      }
    }
  }

  const taken = new Set<string>([...nodeIPs, ...byIP.keys()]);
  const clientSources = uniqueAddresses(opts.clientSources ?? families.map((f) => DEFAULT_CLIENT[f]));
  for (const ip of clientSources) taken.add(ip);
  const podGateways: Partial<Record<Family, string>> = {};
  const fabricAddresses: Partial<Record<Family, string>> = {};
  for (const family of families) {
    podGateways[family] = gatewayFor(family, node.podCIDRs, taken);
    taken.add(podGateways[family]!);
    fabricAddresses[family] = nodeIPs.find((ip) => ipFamily(ip) === family) ?? FALLBACK_NODE[family];
  }

  let index = 0;
  const pods: PlannedPod[] = [...drafts.values()]
    .sort((a, b) => placementOrder(a.placement) - placementOrder(b.placement) || compareIPs(a.ips[0]!, b.ips[0]!))
    .map((d) => {
      const ports = [...d.ports.values()].sort((a, b) => compareIPs(a.ip, b.ip) || a.port - b.port || (a.protocol < b.protocol ? -1 : 1));
      const ips = [...d.ips].sort((a, b) => (ipFamily(a)! - ipFamily(b)!) || compareIPs(a, b));
      if (d.placement === 'host') return { ns: names.node, ips, placement: d.placement, ports };
      index++;
      return { ns: names.pod(index), ...(d.podName !== undefined ? { podName: d.podName } : {}), ips, placement: d.placement, hostInterface: `p${index}`, ports };
    });
  return { names, families, nodeIPs, podGateways, fabricAddresses, clientSources, pods };
}

function placementOrder(p: PlannedPod['placement']): number {
  return p === 'local' ? 0 : p === 'remote' ? 1 : 2;
}

/** The podCIDR's first host not otherwise taken (what a bridge CNI gives cbr0), else a fallback. */
function gatewayFor(family: Family, podCIDRs: readonly string[], taken: ReadonlySet<string>): string {
  for (const text of podCIDRs) {
    const cidr = parseCIDR(text);
    if (cidr?.family !== family) continue;
    for (let n = 1; n < 256; n++) {
      const ip = addToAddress(cidr.network, n);
      if (ip !== undefined && cidrContains(cidr, ip) && !taken.has(ip)) return ip;
    }
  }
  return FALLBACK_GATEWAY[family];
}

/** `ip` + n, or undefined past the end of the address space. */
export function addToAddress(ip: string, n: number): string | undefined {
  const bytes = ipaddr.parse(ip).toByteArray();
  let carry = n;
  for (let i = bytes.length - 1; i >= 0 && carry > 0; i--) {
    const sum = bytes[i]! + carry;
    bytes[i] = sum % 256;
    carry = Math.floor(sum / 256);
  }
  return carry > 0 ? undefined : normalizeIP(ipaddr.fromByteArray(bytes).toString());
}

function uniqueAddresses(list: readonly string[]): string[] {
  const out: string[] = [];
  for (const text of list) {
    const ip = normalizeIP(text);
    if (ip !== undefined && !out.includes(ip)) out.push(ip);
  }
  return out;
}

export function compareIPs(a: string, b: string): number {
  const x = ipaddr.parse(a).toByteArray();
  const y = ipaddr.parse(b).toByteArray();
  if (x.length !== y.length) return x.length - y.length;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}

/** "10.0.0.1/32", "fd00::1/128". */
export function hostCidr(ip: string): string {
  return `${ip}/${ipFamily(ip) === 6 ? 128 : 32}`;
}

/** The namespace an address lives in, when the lab holds it: a pod's, the node's or the client's. */
export function namespaceOf(plan: LabPlan, ip: string): string | undefined {
  const normalized = normalizeIP(ip);
  if (normalized === undefined) return undefined;
  if (plan.nodeIPs.includes(normalized) || normalized === '127.0.0.1' || normalized === '::1') return plan.names.node;
  const pod = plan.pods.find((p) => p.ips.includes(normalized));
  if (pod !== undefined) return pod.ns;
  if (plan.clientSources.includes(normalized)) return plan.names.client;
  return undefined;
}

/** Every endpoint the pods serve, with the namespace it is in. */
export function plannedEndpoints(plan: LabPlan): { ns: string; port: PodPort; podName?: string }[] {
  return plan.pods.flatMap((pod) => pod.ports.map((port) => ({ ns: pod.ns, port, ...(pod.podName !== undefined ? { podName: pod.podName } : {}) })));
}

