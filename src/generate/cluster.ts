/**
 * A realistic cluster at the scale Kubernetes is specified for (sig-scalability's thresholds:
 * 5,000 nodes, 150,000 pods, 10,000 services, at most 110 pods per node), as the objects the
 * API server stores: Namespaces, Nodes, Deployments, ReplicaSets, DaemonSets, Pods, Services,
 * EndpointSlices and a KubeProxyConfiguration. Pure and deterministic: the same options and seed
 * give the same objects, byte for byte once serialised.
 *
 * What makes it realistic (each choice is where a real cluster's data plane is stressed):
 * - service sizes from a heavy-tailed (log-normal) distribution: most services have one to a
 *   few endpoints, a few hundred have tens, and a few are very large: CoreDNS scaled to one
 *   replica per 16 nodes (its autoscaler's linear mode), two big frontends, and two services
 *   backed by DaemonSets (an endpoint on every node): an ingress controller behind a
 *   LoadBalancer with externalTrafficPolicy Local and a node agent with internalTrafficPolicy
 *   Local;
 * - node ports and load balancers (with health check node ports under eTP Local, some with
 *   loadBalancerSourceRanges), headless and ExternalName services kube-proxy skips, session
 *   affinity, external IPs, multi-port and UDP services;
 * - a dual-stack cluster (every node and pod has an IPv4 and an IPv6 address) where some
 *   services are dual-stack;
 * - zones, with trafficDistribution PreferClose (zone hints) on some services;
 * - deployments in the middle of a rollout: old pods terminating (serving while they drain),
 *   new pods not ready yet; and a few pods not ready at all.
 *
 * Pods are placed by the power of two choices (the less loaded of two random nodes), as a
 * spreading scheduler roughly does, never above 110 per node.
 */
import { KpsimError } from '../errors.js';
import { familyOfValidIP } from '../util/ip.js';
import { type Rng, seededRng } from '../util/random.js';
import type { ApiObject } from './objects.js';
import {
  daemonSetObject,
  deploymentObject,
  endpointSliceObject,
  namespaceObject,
  nodeObject,
  podObject,
  proxyConfigObject,
  replicaSetObject,
  serviceObject,
  type EndpointEntry,
  type GeneratedPod,
  type GeneratedService,
  type ObjectMinter,
  type ServicePortSpec,
} from './objects.js';

/** sig-scalability's thresholds (kubernetes/community sig-scalability/configs-and-limits/thresholds.md). */
export const SCALABILITY_THRESHOLDS = { nodes: 5000, pods: 150000, services: 10000, podsPerNode: 110 } as const;

export interface GenerateOptions {
  readonly nodes: number;
  readonly pods: number;
  readonly services: number;
  readonly seed: number;
}

/** One output file: a `kubectl get -o json` style List, or a single object. */
export interface GeneratedFile {
  /** Relative path, e.g. "endpointslices/endpointslices-003.json". */
  readonly path: string;
  readonly objects: readonly ApiObject[];
  /** Written as one object (the KubeProxyConfiguration) rather than a List. */
  readonly single?: boolean;
}

export interface GeneratedSummary {
  readonly nodes: number;
  readonly pods: number;
  readonly services: number;
  readonly endpointSlices: number;
  /** Endpoint entries over every slice (both families). */
  readonly endpoints: number;
  readonly byType: Readonly<Record<string, number>>;
  readonly dualStackServices: number;
  readonly externalTrafficPolicyLocal: number;
  readonly internalTrafficPolicyLocal: number;
  readonly largestServices: readonly { readonly name: string; readonly endpoints: number }[];
  readonly terminatingEndpoints: number;
}

export interface GeneratedCluster {
  readonly files: readonly GeneratedFile[];
  readonly summary: GeneratedSummary;
}

const ZONES = ['zone-a', 'zone-b', 'zone-c'] as const;
export const GENERATED_CLUSTER_CIDRS = ['10.128.0.0/9', 'fd00:10::/48'] as const;
const NODE_PORT_MIN = 30000;
const NODE_PORT_MAX = 32767;
/** The EndpointSlice controller's default maxEndpointsPerSlice. */
const MAX_ENDPOINTS_PER_SLICE = 100;
/** Objects per List file: a few tens of MB each, well under what kpsim reads per file. */
const OBJECTS_PER_FILE = 20000;

export function checkGenerateOptions(opts: GenerateOptions): void {
  const bad = (flag: string, detail: string): KpsimError => new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `${flag}: ${detail}`);
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > 50000) throw bad('--nodes', `${opts.nodes} is not a whole number from 1 to 50000`);
  if (!Number.isInteger(opts.services) || opts.services < 1 || opts.services > 100000) throw bad('--services', `${opts.services} is not a whole number from 1 to 100000`);
  const maxPods = opts.nodes * SCALABILITY_THRESHOLDS.podsPerNode;
  if (!Number.isInteger(opts.pods) || opts.pods < 0 || opts.pods > maxPods) {
    throw bad('--pods', `${opts.pods} is not a whole number from 0 to ${maxPods} (at most ${SCALABILITY_THRESHOLDS.podsPerNode} pods per node)`);
  }
}

/** Address helpers: node i's addresses and pod CIDRs, pod k's addresses on node i. */
export function nodeIPv4(i: number): string {
  const n = 10 + i;
  return `10.0.${n >> 8}.${n & 255}`;
}
export function nodeIPv6(i: number): string {
  return `fd00:1::${(10 + i).toString(16)}`;
}
export function podCIDRv4(i: number): string {
  return `10.${128 + (i >> 8)}.${i & 255}.0/24`;
}
export function podCIDRv6(i: number): string {
  return `fd00:10:0:${i.toString(16)}::/64`;
}
/** Pod addresses start at .2: .1 is the node's bridge (the pods' gateway). */
function podIPv4(node: number, k: number): string {
  return `10.${128 + (node >> 8)}.${node & 255}.${k + 2}`;
}
function podIPv6(node: number, k: number): string {
  return `fd00:10:0:${node.toString(16)}::${(k + 2).toString(16)}`;
}
function serviceIPv4(i: number): string {
  const n = 0x0a600000 + 16 + i; // 10.96.0.16 onwards; 10.96.0.1 is the API server, 10.96.0.10 kube-dns
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}
function serviceIPv6(i: number): string {
  return `fd00:96::${(16 + i).toString(16)}`;
}
function loadBalancerIP(i: number): string {
  const n = 0xc6120000 + 10 + i; // 198.18.0.10 onwards (RFC 2544 benchmarking range)
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** A standard normal draw (Box-Muller). */
function normal(rng: Rng): number {
  const u = Math.max(rng(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

interface Workload {
  readonly namespace: string;
  readonly name: string;
  readonly kind: 'Deployment' | 'DaemonSet';
  /** Pods wanted (for a DaemonSet: one per node). */
  readonly replicas: number;
  readonly containerPorts: readonly ServicePortSpec[];
  /** In the middle of a rolling update. */
  readonly rolling: boolean;
  pods: GeneratedPod[];
}

export function generateCluster(opts: GenerateOptions): GeneratedCluster {
  checkGenerateOptions(opts);
  const rng = seededRng(opts.seed);
  const mint = createMinter(rng);
  const nodeCount = opts.nodes;

  // ---- nodes ----
  const nodeNames = Array.from({ length: nodeCount }, (_, i) => `node-${String(i + 1).padStart(Math.max(4, String(nodeCount).length), '0')}`);
  const nodeZone = nodeNames.map((_, i) => ZONES[i % ZONES.length]!);
  const podsOnNode = new Array<number>(nodeCount).fill(0);

  // ---- namespaces ----
  const namespaceCount = Math.max(1, Math.round(opts.services / 8));
  const namespaces = ['kube-system', 'ingress', 'monitoring', ...Array.from({ length: namespaceCount }, (_, i) => `team-${String(i + 1).padStart(4, '0')}`)];
  const appNamespaces = namespaces.slice(3);

  // ---- workloads and their sizes ----
  const workloads: Workload[] = [];
  const services: GeneratedService[] = [];
  const daemonSets = opts.pods >= 4 * nodeCount;
  const daemonSetPods = daemonSets ? 2 * nodeCount : 0;
  // Pods behind services; the rest run without one (jobs, workers, batch).
  const servicePodBudget = Math.floor(0.8 * (opts.pods - daemonSetPods));
  const corednsReplicas = Math.min(Math.max(2, Math.ceil(nodeCount / 16)), Math.max(1, Math.floor(servicePodBudget / 10)));
  const bigFrontends = servicePodBudget >= 20000 ? 2 : 0;
  const bigFrontendSize = Math.floor(servicePodBudget * 0.015);

  const dnsPorts: ServicePortSpec[] = [
    { name: 'dns', protocol: 'UDP', port: 53, targetPort: 53 },
    { name: 'dns-tcp', protocol: 'TCP', port: 53, targetPort: 53 },
    { name: 'metrics', protocol: 'TCP', port: 9153, targetPort: 9153 },
  ];
  const coredns = addWorkload(workloads, 'kube-system', 'coredns', 'Deployment', corednsReplicas, dnsPorts, false);
  const special: { svc: Omit<GeneratedService, 'workload'>; workload: Workload }[] = [];
  special.push({ workload: coredns, svc: { namespace: 'kube-system', name: 'kube-dns', type: 'ClusterIP', clusterIPs: ['10.96.0.10'], ports: dnsPorts } });
  if (daemonSets) {
    const web: ServicePortSpec[] = [
      { name: 'http', protocol: 'TCP', port: 80, targetPort: 80 },
      { name: 'https', protocol: 'TCP', port: 443, targetPort: 443 },
    ];
    const ingress = addWorkload(workloads, 'ingress', 'ingress-controller', 'DaemonSet', nodeCount, web, false);
    special.push({
      workload: ingress,
      svc: { namespace: 'ingress', name: 'ingress-controller', type: 'LoadBalancer', clusterIPs: [serviceIPv4(0)], ports: web, externalTrafficPolicy: 'Local', lbIngress: [loadBalancerIP(0)] },
    });
    const agentPorts: ServicePortSpec[] = [{ name: 'otlp', protocol: 'TCP', port: 4317, targetPort: 4317 }];
    const agent = addWorkload(workloads, 'monitoring', 'node-agent', 'DaemonSet', nodeCount, agentPorts, false);
    special.push({ workload: agent, svc: { namespace: 'monitoring', name: 'node-agent', type: 'ClusterIP', clusterIPs: [serviceIPv4(1)], ports: agentPorts, internalTrafficPolicy: 'Local' } });
  }
  for (let b = 0; b < bigFrontends; b++) {
    const ports: ServicePortSpec[] = [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }];
    const ns = appNamespaces[b % appNamespaces.length]!;
    const w = addWorkload(workloads, ns, `frontend-${b + 1}`, 'Deployment', bigFrontendSize, ports, false);
    special.push({ workload: w, svc: { namespace: ns, name: `frontend-${b + 1}`, type: 'LoadBalancer', clusterIPs: [serviceIPv4(2 + b)], ports, lbIngress: [loadBalancerIP(1 + b)] } });
  }

  // Regular services: heavy-tailed sizes (log-normal, median about 3), scaled to the budget.
  const regularCount = Math.max(0, opts.services - special.length);
  const specialPods = special.reduce((n, s) => n + (s.workload.kind === 'Deployment' ? s.workload.replicas : 0), 0);
  const raw = Array.from({ length: regularCount }, () => (rng() < 0.01 ? 0 : Math.exp(1.1 + 1.25 * normal(rng))));
  const rawTotal = raw.reduce((a, b) => a + b, 0);
  const budget = Math.max(0, servicePodBudget - specialPods);
  const scale = rawTotal > 0 ? budget / rawTotal : 0;
  const sizes = raw.map((r) => (r === 0 ? 0 : Math.min(250, Math.max(1, Math.round(r * scale)))));

  let nextServiceIP = 2 + bigFrontends;
  let nextLB = 1 + bigFrontends;
  let nextExternalIP = 0;
  for (let i = 0; i < regularCount; i++) {
    const ns = appNamespaces[Math.floor(rng() * appNamespaces.length)]!;
    const name = `svc-${String(i + 1).padStart(5, '0')}`;
    const ports = regularPorts(rng);
    const w = addWorkload(workloads, ns, name, 'Deployment', sizes[i]!, ports, sizes[i]! >= 2 && rng() < 0.03);
    const draw = rng();
    const svc: { -readonly [K in keyof GeneratedService]?: GeneratedService[K] } = { namespace: ns, name, ports, type: 'ClusterIP' };
    if (draw < 0.03) {
      svc.headless = true;
    } else if (draw < 0.035) {
      svc.type = 'ExternalName';
      svc.externalName = `${name}.${ns}.example.com`;
    } else {
      const dual = rng() < 0.1;
      const ip = nextServiceIP++;
      svc.clusterIPs = dual ? [serviceIPv4(ip), serviceIPv6(ip)] : [serviceIPv4(ip)];
      if (draw > 0.9 && draw <= 0.95) svc.type = 'NodePort';
      else if (draw > 0.95) {
        svc.type = 'LoadBalancer';
        svc.lbIngress = [loadBalancerIP(nextLB++)];
        if (rng() < 0.2) svc.loadBalancerSourceRanges = ['203.0.113.0/24', '198.51.100.0/24'];
      }
      if (svc.type !== 'ClusterIP' && rng() < 0.4) svc.externalTrafficPolicy = 'Local';
      if (svc.type === 'ClusterIP' && rng() < 0.01) svc.internalTrafficPolicy = 'Local';
      if (svc.type === 'ClusterIP' && rng() < 0.004) svc.externalIPs = [`192.0.2.${10 + (nextExternalIP++ % 240)}`];
      if (rng() < 0.03) svc.sessionAffinity = true;
      if (rng() < 0.05) svc.trafficDistribution = 'PreferClose';
    }
    special.push({ workload: w, svc: svc as GeneratedService });
  }

  // ---- pods: place every workload's pods, then the ones without a service ----
  const pickNode = (): number => {
    for (;;) {
      const a = Math.floor(rng() * nodeCount);
      const b = Math.floor(rng() * nodeCount);
      const n = podsOnNode[a]! <= podsOnNode[b]! ? a : b;
      if (podsOnNode[n]! < SCALABILITY_THRESHOLDS.podsPerNode) return n;
    }
  };
  const podsPlaced = { count: 0 };
  // generateName as the controllers set it ("<daemonset>-", "<replicaset>-"): the API server
  // adds five random characters and never gives out a name twice in a namespace.
  const podNames = new Set<string>();
  const podName = (w: Workload, hash: string): string => {
    const prefix = w.kind === 'DaemonSet' ? `${w.name}-` : `${w.name}-${hash}-`;
    for (;;) {
      const name = prefix + mint.suffix(5);
      const key = `${w.namespace}/${name}`;
      if (!podNames.has(key)) {
        podNames.add(key);
        return name;
      }
    }
  };
  const place = (w: Workload, node: number, phase: GeneratedPod['state'], hash: string): GeneratedPod => {
    const k = podsOnNode[node]!++;
    podsPlaced.count++;
    const pod: GeneratedPod = {
      namespace: w.namespace,
      name: podName(w, hash),
      uid: mint.uid(),
      node,
      nodeName: nodeNames[node]!,
      zone: nodeZone[node]!,
      ipv4: podIPv4(node, k),
      ipv6: podIPv6(node, k),
      hostIPv4: nodeIPv4(node),
      hostIPv6: nodeIPv6(node),
      state: phase,
      ownerKind: w.kind === 'DaemonSet' ? 'DaemonSet' : 'ReplicaSet',
      ownerName: w.kind === 'DaemonSet' ? w.name : `${w.name}-${hash}`,
      app: w.name,
      templateHash: hash,
      containerPorts: w.containerPorts,
    };
    w.pods.push(pod);
    return pod;
  };
  const replicaSets: { w: Workload; hash: string; replicas: number; old: boolean }[] = [];
  for (const w of workloads) {
    const hash = mint.templateHash();
    if (w.kind === 'DaemonSet') {
      for (let n = 0; n < nodeCount; n++) place(w, n, 'ready', hash);
      continue;
    }
    if (!w.rolling) {
      replicaSets.push({ w, hash, replicas: w.replicas, old: false });
      for (let r = 0; r < w.replicas; r++) place(w, pickNode(), rng() < 0.005 ? 'not-ready' : 'ready', hash);
      continue;
    }
    // A rolling update half-way: a quarter of the pods already replaced by the new ReplicaSet
    // (ready), a quarter surged (new, not ready yet), and the old pods they replace terminating.
    const oldHash = mint.templateHash();
    const moved = Math.max(1, Math.floor(w.replicas / 4));
    replicaSets.push({ w, hash, replicas: 2 * moved, old: false }, { w, hash: oldHash, replicas: w.replicas - moved, old: true });
    for (let r = 0; r < w.replicas - moved; r++) place(w, pickNode(), 'ready', oldHash);
    for (let r = 0; r < moved; r++) place(w, pickNode(), 'terminating', oldHash);
    for (let r = 0; r < moved; r++) place(w, pickNode(), 'ready', hash);
    for (let r = 0; r < moved; r++) place(w, pickNode(), 'not-ready', hash);
  }
  // Pods of workloads without a service (batch jobs, queue workers).
  const loose: Workload[] = [];
  while (podsPlaced.count < opts.pods) {
    const ns = appNamespaces[Math.floor(rng() * appNamespaces.length)]!;
    const size = Math.min(opts.pods - podsPlaced.count, 1 + Math.floor(rng() * 8));
    const w = addWorkload(loose, ns, `worker-${String(loose.length + 1).padStart(5, '0')}`, 'Deployment', size, [], false);
    const hash = mint.templateHash();
    replicaSets.push({ w, hash, replicas: size, old: false });
    for (let r = 0; r < size; r++) place(w, pickNode(), 'ready', hash);
  }

  // ---- node ports, health check node ports: random and unique in the range, as the API server allocates ----
  const usedNodePorts = new Set<number>();
  const freeNodePorts = NODE_PORT_MAX - NODE_PORT_MIN + 1;
  const nodePort = (): number => {
    if (usedNodePorts.size >= freeNodePorts) return 0;
    for (;;) {
      const p = NODE_PORT_MIN + Math.floor(rng() * freeNodePorts);
      if (!usedNodePorts.has(p)) {
        usedNodePorts.add(p);
        return p;
      }
    }
  };
  const allServices: GeneratedService[] = special.map(({ svc, workload }) => {
    const needsNodePorts = svc.type === 'NodePort' || svc.type === 'LoadBalancer';
    const ports = needsNodePorts ? svc.ports.map((p) => ({ ...p, nodePort: nodePort() })) : svc.ports;
    const healthCheckNodePort = svc.type === 'LoadBalancer' && svc.externalTrafficPolicy === 'Local' ? nodePort() : undefined;
    return { ...svc, ports, ...(healthCheckNodePort !== undefined ? { healthCheckNodePort } : {}), workload: workload.name };
  });
  services.push(...allServices);

  // ---- EndpointSlices: one set per service and address family, at most 100 endpoints each ----
  const workloadByKey = new Map([...workloads].map((w) => [`${w.namespace}/${w.name}`, w]));
  const slices: ApiObject[] = [];
  let endpointCount = 0;
  let terminatingEndpoints = 0;
  const largest: { name: string; endpoints: number }[] = [];
  for (const svc of services) {
    if (svc.type === 'ExternalName') continue;
    const w = workloadByKey.get(`${svc.namespace}/${svc.workload}`)!;
    const families: (4 | 6)[] = svc.headless ? [4] : svc.clusterIPs!.map((ip) => familyOfValidIP(ip));
    const pods = w.pods;
    largest.push({ name: `${svc.namespace}/${svc.name}`, endpoints: pods.length });
    for (const family of families) {
      const entries: EndpointEntry[] = pods.map((pod) => ({ pod, address: family === 4 ? pod.ipv4 : pod.ipv6, hintZone: svc.trafficDistribution === 'PreferClose' ? pod.zone : undefined }));
      endpointCount += entries.length;
      terminatingEndpoints += entries.filter((e) => e.pod.state === 'terminating').length;
      for (let start = 0; start < Math.max(1, entries.length); start += MAX_ENDPOINTS_PER_SLICE) {
        slices.push(endpointSliceObject(mint, svc, family, entries.slice(start, start + MAX_ENDPOINTS_PER_SLICE)));
      }
    }
  }
  largest.sort((a, b) => b.endpoints - a.endpoints || (a.name < b.name ? -1 : 1));

  // ---- objects, in files ----
  const serviceObjects = services.map((svc) => serviceObject(mint, svc));
  const allWorkloads = [...workloads, ...loose];
  const pods = allWorkloads.flatMap((w) => w.pods);
  const files: GeneratedFile[] = [
    { path: 'namespaces.json', objects: namespaces.map((ns) => namespaceObject(mint, ns)) },
    { path: 'nodes.json', objects: nodeNames.map((name, i) => nodeObject(mint, { name, zone: nodeZone[i]!, ipv4: nodeIPv4(i), ipv6: nodeIPv6(i), podCIDRs: [podCIDRv4(i), podCIDRv6(i)], pods: podsOnNode[i]! })) },
    { path: 'services.json', objects: serviceObjects },
    ...chunk(slices, OBJECTS_PER_FILE).map((objects, i) => ({ path: `endpointslices/endpointslices-${String(i).padStart(3, '0')}.json`, objects })),
    {
      path: 'workloads.json',
      objects: [
        ...allWorkloads.filter((w) => w.kind === 'Deployment').map((w) => deploymentObject(mint, w.namespace, w.name, w.replicas, w.containerPorts)),
        ...replicaSets.map((rs) => replicaSetObject(mint, rs.w.namespace, `${rs.w.name}-${rs.hash}`, rs.w.name, rs.hash, rs.replicas, rs.w.containerPorts)),
        ...allWorkloads.filter((w) => w.kind === 'DaemonSet').map((w) => daemonSetObject(mint, w.namespace, w.name, nodeCount, w.containerPorts)),
      ],
    },
    ...chunk(pods.map((p) => podObject(mint, p)), OBJECTS_PER_FILE).map((objects, i) => ({ path: `pods/pods-${String(i).padStart(3, '0')}.json`, objects })),
    { path: 'kube-proxy.json', objects: [proxyConfigObject([...GENERATED_CLUSTER_CIDRS])], single: true },
  ];

  const byType: Record<string, number> = {};
  for (const svc of services) {
    const type = svc.headless ? 'Headless' : svc.type;
    byType[type] = (byType[type] ?? 0) + 1;
  }
  return {
    files,
    summary: {
      nodes: nodeCount,
      pods: pods.length,
      services: services.length,
      endpointSlices: slices.length,
      endpoints: endpointCount,
      byType,
      dualStackServices: services.filter((s) => (s.clusterIPs?.length ?? 0) === 2).length,
      externalTrafficPolicyLocal: services.filter((s) => s.externalTrafficPolicy === 'Local').length,
      internalTrafficPolicyLocal: services.filter((s) => s.internalTrafficPolicy === 'Local').length,
      largestServices: largest.slice(0, 5),
      terminatingEndpoints,
    },
  };
}

function addWorkload(list: Workload[], namespace: string, name: string, kind: Workload['kind'], replicas: number, containerPorts: readonly ServicePortSpec[], rolling: boolean): Workload {
  const w: Workload = { namespace, name, kind, replicas, containerPorts, rolling, pods: [] };
  list.push(w);
  return w;
}

/** One HTTP port mostly; some services add a second (gRPC, metrics) or are UDP. */
function regularPorts(rng: Rng): ServicePortSpec[] {
  const draw = rng();
  if (draw < 0.02) return [{ name: 'udp', protocol: 'UDP', port: 5000, targetPort: 5000 }];
  const http: ServicePortSpec = { name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 };
  if (draw < 0.12) return [http, { name: 'grpc', protocol: 'TCP', port: 9090, targetPort: 9090 }];
  if (draw < 0.17) return [http, { name: 'metrics', protocol: 'TCP', port: 9100, targetPort: 9100 }];
  return [http];
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Names, UIDs and times as the API server mints them, from the seeded source: generateName
 * suffixes from Kubernetes' alphabet (no vowels, no confusable digits), UUIDs, resourceVersions
 * counting up, creation times after a fixed start.
 */
function createMinter(rng: Rng): ObjectMinter {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  let resourceVersion = 1000;
  const start = Date.UTC(2026, 0, 5, 8, 0, 0);
  const pick = (chars: string, n: number): string => {
    let s = '';
    for (let i = 0; i < n; i++) s += chars[Math.floor(rng() * chars.length)]!;
    return s;
  };
  return {
    suffix: (n) => pick(alphabet, n),
    templateHash: () => pick(alphabet, 10),
    uid: () => {
      const hex = pick('0123456789abcdef', 32);
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${'89ab'[Math.floor(rng() * 4)]}${hex.slice(17, 20)}-${hex.slice(20)}`;
    },
    resourceVersion: () => String(resourceVersion++),
    timestamp: () => new Date(start + Math.floor(rng() * 30 * 86400) * 1000).toISOString().replace('.000Z', 'Z'),
  };
}
