/**
 * `kpsim generate`'s cluster: deterministic for a seed, within Kubernetes' thresholds, realistic
 * where the data plane is stressed (heavy-tailed service sizes, DaemonSet-backed services, Local
 * policies, node ports, rollouts), and loaded by kpsim without a warning but the skipped kinds.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isKpsimError } from '../../src/errors.js';
import { type GenerateOptions, generateCluster } from '../../src/generate/cluster.js';
import { clusterFromManifests } from '../../src/manifest/load.js';
import { cidrContains, parseCIDR } from '../../src/util/ip.js';

const OPTIONS: GenerateOptions = { nodes: 60, pods: 3000, services: 250, seed: 3 };
const generated = generateCluster(OPTIONS);

type Obj = { kind: string; metadata: { name: string; namespace?: string }; spec?: Record<string, unknown>; status?: Record<string, unknown> } & Record<string, unknown>;
const objects = generated.files.flatMap((f) => f.objects as readonly Obj[]);
const ofKind = (kind: string): Obj[] => objects.filter((o) => o.kind === kind);
const cluster = clusterFromManifests(generated.files.map((f) => ({ file: f.path, text: JSON.stringify(f.single ? f.objects[0] : { apiVersion: 'v1', kind: 'List', items: f.objects }) })));

test('the same options and seed give the same objects; another seed others', () => {
  assert.deepStrictEqual(generateCluster(OPTIONS), generated);
  assert.notDeepStrictEqual(generateCluster({ ...OPTIONS, seed: 4 }).files, generated.files);
});

interface Property {
  readonly name: string;
  /** undefined when it holds, else the evidence. */
  readonly check: () => string | undefined;
}

const endpointsOf = (svc: string, ns: string): { nodeName: string; addresses: string[]; conditions: { ready: boolean; serving: boolean; terminating: boolean } }[] =>
  ofKind('EndpointSlice')
    .filter((s) => s.metadata.namespace === ns && (s.metadata as unknown as { labels: Record<string, string> }).labels['kubernetes.io/service-name'] === svc && s['addressType'] === 'IPv4')
    .flatMap((s) => s['endpoints'] as ReturnType<typeof endpointsOf>);

const properties: Property[] = [
  {
    name: 'exactly the nodes, pods and services asked for',
    check: () => {
      const got = { nodes: ofKind('Node').length, pods: ofKind('Pod').length, services: ofKind('Service').length };
      return got.nodes === OPTIONS.nodes && got.pods === OPTIONS.pods && got.services === OPTIONS.services ? undefined : JSON.stringify(got);
    },
  },
  {
    name: 'at most 110 pods per node, each address inside its node\'s pod CIDR',
    check: () => {
      const cidrs = new Map(ofKind('Node').map((n) => [n.metadata.name, (n.spec!['podCIDRs'] as string[]).map((c) => parseCIDR(c)!)]));
      const perNode = new Map<string, number>();
      for (const pod of ofKind('Pod')) {
        const node = pod.spec!['nodeName'] as string;
        perNode.set(node, (perNode.get(node) ?? 0) + 1);
        for (const { ip } of pod.status!['podIPs'] as { ip: string }[]) {
          if (!cidrs.get(node)!.some((c) => cidrContains(c, ip))) return `${pod.metadata.name} has ${ip} outside ${node}'s pod CIDRs`;
        }
      }
      const max = Math.max(...perNode.values());
      return max <= 110 ? undefined : `a node has ${max} pods`;
    },
  },
  {
    name: 'EndpointSlices of at most 100 endpoints, each on a node of the cluster',
    check: () => {
      const nodes = new Set(ofKind('Node').map((n) => n.metadata.name));
      for (const s of ofKind('EndpointSlice')) {
        const eps = s['endpoints'] as { nodeName: string }[];
        if (eps.length > 100) return `${s.metadata.name} has ${eps.length}`;
        const stray = eps.find((e) => !nodes.has(e.nodeName));
        if (stray) return `${s.metadata.name}: ${JSON.stringify(stray)}`;
      }
      return undefined;
    },
  },
  {
    name: 'node ports unique and inside 30000-32767; a health check node port exactly for LoadBalancers with externalTrafficPolicy Local',
    check: () => {
      const seen = new Set<number>();
      for (const svc of ofKind('Service')) {
        const spec = svc.spec!;
        const ports = [...(spec['ports'] as { nodePort?: number }[]).map((p) => p.nodePort), spec['healthCheckNodePort'] as number | undefined].filter((p): p is number => p !== undefined);
        for (const p of ports) {
          if (p < 30000 || p > 32767 || seen.has(p)) return `${svc.metadata.name}: node port ${p}`;
          seen.add(p);
        }
        const wantsHealthCheck = spec['type'] === 'LoadBalancer' && spec['externalTrafficPolicy'] === 'Local';
        if (wantsHealthCheck !== (spec['healthCheckNodePort'] !== undefined)) return `${svc.metadata.name}: healthCheckNodePort ${String(spec['healthCheckNodePort'])}`;
      }
      return undefined;
    },
  },
  {
    name: 'service sizes are heavy-tailed: the largest Deployment-backed service is many times the median',
    check: () => {
      const sizes = cluster.services
        .filter((s) => !['ingress-controller', 'node-agent'].includes(s.name))
        .map((s) => endpointsOf(s.name, s.namespace).length)
        .filter((n) => n > 0)
        .sort((a, b) => a - b);
      const median = sizes[Math.floor(sizes.length / 2)]!;
      return sizes.at(-1)! >= 10 * median ? undefined : `median ${median}, largest ${sizes.at(-1)}`;
    },
  },
  {
    name: 'the DaemonSet-backed services have an endpoint on every node: an eTP Local load balancer and an iTP Local service',
    check: () => {
      const ingress = cluster.services.find((s) => s.name === 'ingress-controller')!;
      const agent = cluster.services.find((s) => s.name === 'node-agent')!;
      const onNodes = (name: string, ns: string): number => new Set(endpointsOf(name, ns).map((e) => e.nodeName)).size;
      const got = [ingress.type, ingress.externalTrafficPolicy, agent.internalTrafficPolicy, onNodes('ingress-controller', 'ingress'), onNodes('node-agent', 'monitoring')];
      return JSON.stringify(got) === JSON.stringify(['LoadBalancer', 'Local', 'Local', OPTIONS.nodes, OPTIONS.nodes]) ? undefined : JSON.stringify(got);
    },
  },
  {
    name: 'a rollout in progress: terminating endpoints still serving, new ones not ready',
    check: () => {
      const eps = ofKind('EndpointSlice').flatMap((s) => s['endpoints'] as { conditions: { ready: boolean; serving: boolean; terminating: boolean } }[]);
      const draining = eps.filter((e) => e.conditions.terminating && e.conditions.serving && !e.conditions.ready).length;
      const starting = eps.filter((e) => !e.conditions.ready && !e.conditions.serving && !e.conditions.terminating).length;
      return draining > 0 && starting > 0 ? undefined : `draining ${draining}, starting ${starting}`;
    },
  },
  {
    name: 'dual-stack: every node has both families, some services two ClusterIPs with IPv6 slices',
    check: () => {
      const dual = cluster.services.filter((s) => s.clusterIPs.length === 2);
      const v6Slices = cluster.endpointSlices.filter((s) => s.addressType === 'IPv6').length;
      const singleStackNode = cluster.nodes.find((n) => n.addresses.filter((a) => a.type === 'InternalIP').length !== 2);
      return dual.length > 0 && v6Slices > 0 && singleStackNode === undefined ? undefined : `${dual.length} dual-stack services, ${v6Slices} IPv6 slices, ${singleStackNode?.name ?? ''}`;
    },
  },
  {
    name: 'kpsim reads it with no warning but the kinds it skips',
    check: () => {
      const other = cluster.warnings.filter((w) => !w.message.startsWith('skipped '));
      return other.length === 0 ? undefined : other.map((w) => w.message).join('; ');
    },
  },
];

for (const p of properties) {
  test(p.name, () => {
    const evidence = p.check();
    assert.equal(evidence, undefined, evidence);
  });
}

const bad: { name: string; opts: GenerateOptions; flag: string }[] = [
  { name: 'no node', opts: { ...OPTIONS, nodes: 0 }, flag: '--nodes' },
  { name: 'more pods than 110 a node', opts: { ...OPTIONS, nodes: 2, pods: 221 }, flag: '--pods' },
  { name: 'no service', opts: { ...OPTIONS, services: 0 }, flag: '--services' },
];
for (const c of bad) {
  test(`refused: ${c.name}`, () => {
    assert.throws(() => generateCluster(c.opts), (e: unknown) => isKpsimError(e) && e.code === 'KPSIM_ERR_USAGE_BAD_FLAG' && e.message.startsWith(`${c.flag}: `));
  });
}
