/**
 * What the API server fills in when a Service is created, for hand-written manifests that lack
 * it (--allocate): ClusterIPs from the service CIDRs and node ports from the node-port range.
 *
 * The API server picks at random; kpsim picks the lowest free value, in input order, so the same
 * input always gives the same cluster. Addresses and ports already used by other objects are
 * never handed out twice. As in the API server, the network address of a service range is never
 * handed out and its first address belongs to the default/kubernetes Service, whether or not
 * that Service is in the input.
 */
import { Netmask } from 'netmask';
import { KpsimError } from '../errors.js';
import { type Cidr, bigIntToIP, ipFamily, ipToBigInt, parseCIDR } from '../util/ip.js';
import type { IPFamilyName, Service } from './types.js';

export interface NodePortRange {
  readonly min: number;
  readonly max: number;
}

/** kube-apiserver's default --service-node-port-range. */
export const DEFAULT_NODE_PORT_RANGE: NodePortRange = { min: 30000, max: 32767 };
/** kubeadm's default --service-cluster-ip-range (kube-apiserver alone defaults to 10.0.0.0/24). */
export const DEFAULT_SERVICE_CIDRS = ['10.96.0.0/12'];

/** Hands out the lowest free host address of one CIDR. */
class AddressAllocator {
  private readonly first: bigint;
  private readonly last: bigint;
  private next: bigint;
  private readonly used = new Set<string>();

  constructor(readonly cidr: Cidr) {
    if (cidr.family === 4) {
      // netmask knows the usable host range of an IPv4 block (network and broadcast excluded).
      const block = new Netmask(cidr.text);
      this.first = ipToBigInt(block.first);
      this.last = ipToBigInt(block.last);
    } else {
      const base = ipToBigInt(cidr.network);
      const size = 1n << BigInt(128 - cidr.prefixLength);
      this.first = size > 1n ? base + 1n : base;
      this.last = base + size - 1n;
    }
    this.next = this.first;
  }

  reserve(ip: string): void {
    this.used.add(ip);
  }

  /** The first host address: the API server gives it to default/kubernetes. */
  firstHost(): string | undefined {
    return this.first <= this.last ? bigIntToIP(this.first, this.cidr.family) : undefined;
  }

  allocate(): string | undefined {
    while (this.next <= this.last) {
      const candidate = bigIntToIP(this.next, this.cidr.family);
      this.next++;
      if (!this.used.has(candidate)) {
        this.used.add(candidate);
        return candidate;
      }
    }
    return undefined;
  }
}

/** Hands out the lowest free port of the node-port range. */
class PortAllocator {
  private readonly used = new Set<number>();
  private next: number;

  constructor(readonly range: NodePortRange) {
    this.next = range.min;
  }

  reserve(port: number): void {
    this.used.add(port);
  }

  allocate(): number | undefined {
    while (this.next <= this.range.max) {
      const port = this.next++;
      if (!this.used.has(port)) {
        this.used.add(port);
        return port;
      }
    }
    return undefined;
  }
}

export interface AllocateOptions {
  /** One CIDR per family, primary first ("10.96.0.0/12", "fd00:10:96::/112"). */
  serviceCIDRs: readonly string[];
  nodePortRange: NodePortRange;
}

/**
 * Fills in ClusterIPs, ipFamilies, node ports and health-check node ports that the API server
 * would have allocated. Mutates the services; returns the problems (an exhausted range).
 * `reserved` services only hold addresses and ports (the API server's store, when one Service
 * is created among those it already has): they are never changed.
 */
export function allocateServiceFields(services: readonly Service[], options: AllocateOptions, reserved: readonly Service[] = []): KpsimError[] {
  const cidrs = options.serviceCIDRs.map((text) => parseCIDR(text)).filter((c): c is Cidr => c !== undefined);
  const addressAllocators = new Map<4 | 6, AddressAllocator>(cidrs.map((c) => [c.family, new AddressAllocator(c)]));
  const ports = new PortAllocator(options.nodePortRange);
  // The API server's own Service takes the first address of each range (the apiserver creates
  // it with that address at start-up): reserve it for default/kubernetes alone.
  const kubernetesIPs = new Map<4 | 6, string>();
  for (const [family, allocator] of addressAllocators) {
    const ip = allocator.firstHost();
    if (ip === undefined) continue;
    kubernetesIPs.set(family, ip);
    allocator.reserve(ip);
  }
  for (const svc of [...reserved, ...services]) {
    for (const ip of svc.clusterIPs) addressAllocators.get(ipFamily(ip)!)?.reserve(ip);
    for (const p of svc.ports) if (p.nodePort !== 0) ports.reserve(p.nodePort);
    if (svc.healthCheckNodePort !== 0) ports.reserve(svc.healthCheckNodePort);
  }
  const primaryFamily = cidrs[0]?.family ?? 4;
  const problems: KpsimError[] = [];
  for (const svc of services) {
    const where = { file: svc.origin.file, object: svc.origin.object };
    if (svc.type !== 'ExternalName' && !svc.headless && svc.clusterIPs.length === 0) {
      const families: (4 | 6)[] = svc.ipFamilies.length > 0 ? svc.ipFamilies.map((f) => (f === 'IPv4' ? 4 : 6)) : [primaryFamily];
      const isKubernetes = svc.namespace === 'default' && svc.name === 'kubernetes';
      for (const family of families) {
        const allocator = addressAllocators.get(family);
        const ip = (isKubernetes ? kubernetesIPs.get(family) : undefined) ?? allocator?.allocate();
        if (ip === undefined) {
          const reason = allocator ? `${allocator.cidr.text} is full` : `no IPv${family} range in --service-cluster-ip-range`;
          problems.push(new KpsimError('KPSIM_ERR_MODEL_ALLOCATION', `no ClusterIP could be allocated: ${reason}`, { ...where, path: 'spec.clusterIP' }));
          continue;
        }
        svc.clusterIPs.push(ip);
      }
      if (svc.ipFamilies.length === 0) svc.ipFamilies = svc.clusterIPs.map((ip): IPFamilyName => (ipFamily(ip) === 4 ? 'IPv4' : 'IPv6'));
    }
    if (svc.type === 'NodePort' || svc.type === 'LoadBalancer') {
      svc.ports.forEach((p, i) => {
        if (p.nodePort !== 0) return;
        const port = ports.allocate();
        if (port === undefined) problems.push(portRangeFull(where, `spec.ports[${i}].nodePort`, options.nodePortRange));
        else p.nodePort = port;
      });
    }
    if (svc.type === 'LoadBalancer' && svc.externalTrafficPolicy === 'Local' && svc.healthCheckNodePort === 0) {
      const port = ports.allocate();
      if (port === undefined) problems.push(portRangeFull(where, 'spec.healthCheckNodePort', options.nodePortRange));
      else svc.healthCheckNodePort = port;
    }
  }
  return problems;
}

function portRangeFull(where: { file: string; object: string }, path: string, range: NodePortRange): KpsimError {
  return new KpsimError('KPSIM_ERR_MODEL_ALLOCATION', `no node port could be allocated: ${range.min}-${range.max} is full`, { ...where, path });
}

/** "30000-32767" → range; undefined when it is not that form. */
export function parseNodePortRange(text: string): NodePortRange | undefined {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const min = Number.parseInt(m[1]!, 10);
  const max = Number.parseInt(m[2]!, 10);
  if (min < 1 || max > 65535 || min > max) return undefined;
  return { min, max };
}
