/**
 * Builders for tests, in the style of kube-proxy's proxier_test.go: makeService(ns, name, mutate)
 * and makeSlice(ns, name, n, mutate) produce Kubernetes manifests (plain objects, as the API
 * server would store them), which go through kpsim's real decoder into a ProxierState.
 *
 * fixtureState() stands on kube-proxy's test fixture: node "test-node" with the node IPs of
 * NewFakeProxier (192.168.0.2 primary, 192.168.1.2, 192.168.99.11, 2001:db8::1, 2001:db8:1::2),
 * pod CIDR 10.0.0.0/8 (fd00:10::/64 for IPv6) as the local detector, localhostNodePorts on.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { type IptablesCompileOptions, compileIptablesRules } from '../../src/iptables/compile.js';
import { protocolWord } from '../../src/iptables/names.js';
import { renderIptablesSave } from '../../src/iptables/render.js';
import type { Ruleset } from '../../src/iptables/types.js';
import { type LoadOptions, clusterFromManifests, loadCluster } from '../../src/manifest/load.js';
import type { Cluster, Protocol } from '../../src/model/types.js';
import { createTracer } from '../../src/trace/tracer.js';
import type { Hop, Verdict } from '../../src/trace/types.js';
import { buildProxierState, familiesInUse, resolveNode } from '../../src/tracker/proxier-state.js';
import type { ProxierState } from '../../src/tracker/types.js';
import type { Family } from '../../src/util/ip.js';
import { seededRng } from '../../src/util/random.js';

export const TEST_NODE_NAME = 'test-node';
export const TEST_NODE_IP = '192.168.0.2';
export const TEST_NODE_IP_ALT = '192.168.1.2';
export const TEST_EXTERNAL_IP = '192.168.99.11';
export const TEST_NODE_IPV6 = '2001:db8::1';
export const TEST_NODE_IPV6_ALT = '2001:db8:1::2';
export const TEST_EXTERNAL_CLIENT = '203.0.113.2';
export const TEST_EXTERNAL_CLIENT_BLOCKED = '203.0.113.130';
/** kube-proxy's testNodeIPs: what its test tracer treats as LOCAL (plus 127.0.0.1 and ::1). */
export const TEST_NODE_IPS = [TEST_NODE_IP, TEST_NODE_IP_ALT, TEST_EXTERNAL_IP, TEST_NODE_IPV6, TEST_NODE_IPV6_ALT];

export interface ServicePortManifest {
  name?: string;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  port: number;
  targetPort?: number | string;
  nodePort?: number;
}

export interface ServiceManifest {
  apiVersion: 'v1';
  kind: 'Service';
  metadata: { name: string; namespace: string; labels?: Record<string, string> };
  spec: {
    type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
    clusterIP?: string;
    clusterIPs?: string[];
    ipFamilies?: ('IPv4' | 'IPv6')[];
    ipFamilyPolicy?: string;
    ports?: ServicePortManifest[];
    selector?: Record<string, string>;
    externalIPs?: string[];
    externalName?: string;
    externalTrafficPolicy?: 'Cluster' | 'Local';
    internalTrafficPolicy?: 'Cluster' | 'Local';
    healthCheckNodePort?: number;
    loadBalancerSourceRanges?: string[];
    sessionAffinity?: 'None' | 'ClientIP';
    sessionAffinityConfig?: { clientIP?: { timeoutSeconds?: number } };
    trafficDistribution?: string;
  };
  status: { loadBalancer: { ingress?: { ip?: string; hostname?: string; ipMode?: 'VIP' | 'Proxy' }[] } };
}

export interface EndpointManifest {
  addresses: string[];
  conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
  nodeName?: string;
  zone?: string;
  hints?: { forZones?: { name: string }[]; forNodes?: { name: string }[] };
  targetRef?: { kind: string; namespace?: string; name: string };
}

export interface EndpointSliceManifest {
  apiVersion: 'discovery.k8s.io/v1';
  kind: 'EndpointSlice';
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  addressType: 'IPv4' | 'IPv6';
  endpoints: EndpointManifest[];
  ports: { name?: string; port?: number; protocol?: 'TCP' | 'UDP' | 'SCTP' }[];
}

export interface NodeManifest {
  apiVersion: 'v1';
  kind: 'Node';
  metadata: { name: string; labels?: Record<string, string> };
  spec: { podCIDR?: string; podCIDRs?: string[] };
  status: { addresses: { type: string; address: string }[] };
}

export interface KubeProxyConfigurationManifest {
  apiVersion: 'kubeproxy.config.k8s.io/v1alpha1';
  kind: 'KubeProxyConfiguration';
  mode?: string;
  clusterCIDR?: string;
  detectLocalMode?: string;
  hostnameOverride?: string;
  nodePortAddresses?: string[];
  iptables?: { masqueradeAll?: boolean; masqueradeBit?: number; localhostNodePorts?: boolean };
  conntrack?: { tcpBeLiberal?: boolean };
  featureGates?: Record<string, boolean>;
}

export type Manifest = ServiceManifest | EndpointSliceManifest | NodeManifest | KubeProxyConfigurationManifest;

/** kube-proxy's makeTestService: an empty Service that `mutate` fills in. */
export function makeService(namespace: string, name: string, mutate: (svc: ServiceManifest) => void = () => {}): ServiceManifest {
  const svc: ServiceManifest = { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: {}, status: { loadBalancer: {} } };
  mutate(svc);
  return svc;
}

/** kube-proxy's makeTestEndpointSlice: slice `${name}-${sliceNum}` labelled for service `name`. */
export function makeSlice(namespace: string, name: string, sliceNum: number, mutate: (eps: EndpointSliceManifest) => void): EndpointSliceManifest {
  const eps: EndpointSliceManifest = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${name}-${sliceNum}`, namespace, labels: { 'kubernetes.io/service-name': name } },
    addressType: 'IPv4',
    endpoints: [],
    ports: [],
  };
  mutate(eps);
  return eps;
}

export function makeNode(name: string, addresses: readonly string[], mutate: (node: NodeManifest) => void = () => {}): NodeManifest {
  const node: NodeManifest = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name } },
    spec: {},
    status: { addresses: [...addresses.map((address) => ({ type: 'InternalIP', address })), { type: 'Hostname', address: name }] },
  };
  mutate(node);
  return node;
}

export function makeProxyConfig(mutate: (config: KubeProxyConfigurationManifest) => void = () => {}): KubeProxyConfigurationManifest {
  const config: KubeProxyConfigurationManifest = { apiVersion: 'kubeproxy.config.k8s.io/v1alpha1', kind: 'KubeProxyConfiguration', mode: 'iptables' };
  mutate(config);
  return config;
}

/** kube-proxy's fake proxier's node and configuration. */
export function fixtureNode(): NodeManifest {
  return makeNode(TEST_NODE_NAME, [TEST_NODE_IP, TEST_NODE_IP_ALT, TEST_EXTERNAL_IP, TEST_NODE_IPV6, TEST_NODE_IPV6_ALT]);
}

export function fixtureConfig(mutate: (config: KubeProxyConfigurationManifest) => void = () => {}): KubeProxyConfigurationManifest {
  return makeProxyConfig((c) => {
    c.clusterCIDR = '10.0.0.0/8,fd00:10::/64';
    c.hostnameOverride = TEST_NODE_NAME;
    c.iptables = { masqueradeAll: false, masqueradeBit: 14, localhostNodePorts: true };
    mutate(c);
  });
}

/** Manifests as one multi-document YAML text. */
export function manifestsToYAML(manifests: readonly Manifest[]): string {
  return manifests.map((m) => stringify(m, { lineWidth: 0 })).join('---\n');
}

export function clusterOf(manifests: readonly Manifest[]): Cluster {
  return clusterFromManifests([{ file: 'test.yaml', text: manifestsToYAML(manifests) }]);
}

export interface FixtureOptions {
  family?: Family;
  /** Changes to the KubeProxyConfiguration (masqueradeAll, nodePortAddresses, ...). */
  config?: (config: KubeProxyConfigurationManifest) => void;
}

/**
 * The ProxierState of kube-proxy's fake proxier for these services and slices. Manifests that
 * are not Services or EndpointSlices replace the fixture's node or configuration.
 */
export function fixtureState(manifests: readonly Manifest[], options: FixtureOptions = {}): ProxierState {
  const hasNode = manifests.some((m) => m.kind === 'Node');
  const hasConfig = manifests.some((m) => m.kind === 'KubeProxyConfiguration');
  const all: Manifest[] = [...manifests];
  if (!hasNode) all.push(fixtureNode());
  if (!hasConfig) all.push(fixtureConfig(options.config));
  const cluster = clusterOf(all);
  return buildProxierState(cluster, resolveNode(cluster), options.family ?? 4);
}

/** One ready endpoint (kube-proxy's tests leave conditions nil: ready, serving, not terminating). */
export function ep(address: string, nodeName?: string, conditions?: EndpointManifest['conditions']): EndpointManifest {
  return { addresses: [address], ...(nodeName !== undefined ? { nodeName } : {}), ...(conditions !== undefined ? { conditions } : {}) };
}

/** A TCP port (kube-proxy's tests write Name/Port/Protocol). */
export function tcpPort(name: string, port: number, extra: Partial<ServicePortManifest> = {}): ServicePortManifest {
  return { name, port, protocol: 'TCP', ...extra };
}

/** The services and slices of kube-proxy's TestOverallIPTablesRules. */
export function overallServices(): Manifest[] {
  const p80 = [{ name: 'p80', port: 80, protocol: 'TCP' as const }];
  return [
    makeService('ns1', 'svc1', (s) => { s.spec.clusterIP = '172.30.0.41'; s.spec.ports = [tcpPort('p80', 80)]; }),
    makeService('ns2', 'svc2', (s) => {
      s.spec.type = 'LoadBalancer';
      s.spec.externalTrafficPolicy = 'Local';
      s.spec.clusterIP = '172.30.0.42';
      s.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })];
      s.status.loadBalancer.ingress = [{ ip: '1.2.3.4' }];
      s.spec.externalIPs = ['192.168.99.22'];
      s.spec.healthCheckNodePort = 30000;
    }),
    makeService('ns3', 'svc3', (s) => { s.spec.type = 'NodePort'; s.spec.clusterIP = '172.30.0.43'; s.spec.ports = [tcpPort('p80', 80, { nodePort: 3003 })]; }),
    makeService('ns4', 'svc4', (s) => { s.spec.type = 'NodePort'; s.spec.clusterIP = '172.30.0.44'; s.spec.externalIPs = ['192.168.99.33']; s.spec.ports = [tcpPort('p80', 80, { targetPort: 80 })]; }),
    makeService('ns5', 'svc5', (s) => {
      s.spec.type = 'LoadBalancer';
      s.spec.externalTrafficPolicy = 'Cluster';
      s.spec.clusterIP = '172.30.0.45';
      s.spec.ports = [tcpPort('p80', 80, { nodePort: 3002 })];
      s.status.loadBalancer.ingress = [{ ip: '5.6.7.8' }];
      s.spec.healthCheckNodePort = 30000;
      s.spec.loadBalancerSourceRanges = [' 203.0.113.0/25'];
      s.spec.sessionAffinity = 'ClientIP';
      s.spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: 10800 } };
    }),
    makeService('ns6', 'svc6', (s) => { s.spec.type = 'ClusterIP'; s.spec.clusterIP = '172.30.0.46'; s.spec.ports = [tcpPort('p80', 80, { targetPort: 80 })]; }),
    makeSlice('ns1', 'svc1', 1, (eps) => { eps.endpoints = [ep('10.180.0.1')]; eps.ports = p80; }),
    makeSlice('ns2', 'svc2', 1, (eps) => { eps.endpoints = [ep('10.180.0.2')]; eps.ports = p80; }),
    makeSlice('ns3', 'svc3', 1, (eps) => { eps.endpoints = [ep('10.180.0.3')]; eps.ports = p80; }),
    makeSlice('ns4', 'svc4', 1, (eps) => { eps.endpoints = [ep('10.180.0.4'), ep('10.180.0.5', 'test-node')]; eps.ports = p80; }),
    makeSlice('ns5', 'svc5', 1, (eps) => { eps.endpoints = [ep('10.180.0.3')]; eps.ports = p80; }),
  ];
}

// ---------------------------------------------------------------------------------------------
// The example clusters under rules/ and their golden iptables-save files.

/** The repository root: the nearest folder above this file with a package.json and rules/. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'rules'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the repository root above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

export interface RulesCluster {
  /** The folder name under rules/. */
  readonly name: string;
  readonly dir: string;
  readonly cluster: Cluster;
  /** The families kube-proxy runs a proxier for: one golden file each. */
  readonly families: readonly Family[];
}

/**
 * The load options a rules folder asks for in its kpsim.flags file: the kpsim flags its goldens
 * were compiled with (`kpsim compile -f rules/<name> $(cat rules/<name>/kpsim.flags)`), for
 * folders of manifests as written rather than as stored. Only the flags that change the cluster.
 */
export function rulesFolderOptions(dir: string): LoadOptions {
  const file = join(dir, RULES_FLAGS_FILE);
  if (!existsSync(file)) return {};
  const words = readFileSync(file, 'utf8').split(/\s+/).filter((w) => w !== '');
  const options: LoadOptions = {};
  for (let i = 0; i < words.length; i++) {
    const flag = words[i]!;
    if (flag === '--allocate') options.allocate = true;
    else if (flag === '--nodes') options.nodes = Number(words[++i]);
    else if (flag === '--cluster-cidr') options.clusterCIDR = words[++i]!;
    else if (flag === '--service-cluster-ip-range') options.serviceClusterIPRange = words[++i]!;
    else throw new Error(`${file}: ${flag} is not a flag the rules folders may use`);
  }
  return options;
}

/** The file that names a rules folder's load flags. */
export const RULES_FLAGS_FILE = 'kpsim.flags';

/** Every rules/<name>/ folder, loaded as kpsim loads it (node from hostnameOverride; flags from kpsim.flags). */
export async function loadRulesClusters(): Promise<RulesCluster[]> {
  const rulesDir = join(repoRoot(), 'rules');
  const names = readdirSync(rulesDir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  const out: RulesCluster[] = [];
  for (const name of names) {
    const dir = join(rulesDir, name);
    const cluster = await loadCluster(dir, rulesFolderOptions(dir));
    out.push({ name, dir, cluster, families: familiesInUse(cluster, resolveNode(cluster)) });
  }
  return out;
}

export function goldenFile(dir: string, family: Family): string {
  return join(dir, `iptables-save.v${family}.txt`);
}

/** What the golden file of a cluster and family holds: the compiled ruleset, rendered. */
export function renderGolden(cluster: Cluster, family: Family, options: IptablesCompileOptions = {}): string {
  return renderIptablesSave(compileIptablesRules(goldenState(cluster, family), options));
}

export function goldenState(cluster: Cluster, family: Family): ProxierState {
  return buildProxierState(cluster, resolveNode(cluster), family);
}

// ---------------------------------------------------------------------------------------------
// Seeded cluster generation: rules/large-cluster and the compile benchmark.

/** The project's seeded PRNG, so generated clusters are the same on every run. */
export const seededRandom = seededRng;

function ipv4Plus(base: string, offset: number): string {
  const [a, b, c, d] = base.split('.').map(Number) as [number, number, number, number];
  const n = (((a << 24) | (b << 16) | (c << 8) | d) >>> 0) + offset;
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface GeneratedClusterOptions {
  seed: number;
  services: number;
  endpointsPerService: number;
  nodes: number;
}

/**
 * A realistic mix: about 75% ClusterIP, 15% NodePort (a third of them eTP=Local), 10%
 * LoadBalancer (half with loadBalancerSourceRanges and eTP=Local); some ClientIP affinity, some
 * two-port services, a few terminating endpoints. The point of view is node-1.
 */
export function generateClusterManifests(options: GeneratedClusterOptions): Manifest[] {
  const random = seededRandom(options.seed);
  const manifests: Manifest[] = [];
  for (let n = 1; n <= options.nodes; n++) {
    manifests.push(makeNode(`node-${n}`, [ipv4Plus('192.168.0.10', n)], (node) => {
      node.spec.podCIDRs = [`10.244.${n}.0/24`];
    }));
  }
  manifests.push(makeProxyConfig((c) => {
    c.clusterCIDR = '10.244.0.0/14';
    c.hostnameOverride = 'node-1';
  }));
  let nextNodePort = 30000;
  let nextPod = 1;
  for (let i = 0; i < options.services; i++) {
    const namespace = `ns-${i % 20}`;
    const name = `svc-${i}`;
    const kind = random();
    const twoPorts = random() < 0.1;
    const affinity = random() < 0.05;
    manifests.push(makeService(namespace, name, (svc) => {
      svc.spec.clusterIP = ipv4Plus('10.96.0.10', i);
      svc.spec.clusterIPs = [svc.spec.clusterIP];
      svc.spec.ports = [tcpPort('http', 80, { targetPort: 8080 })];
      if (twoPorts) svc.spec.ports.push(tcpPort('https', 443, { targetPort: 8443 }));
      svc.spec.type = 'ClusterIP';
      if (kind >= 0.75) {
        svc.spec.type = kind < 0.9 ? 'NodePort' : 'LoadBalancer';
        for (const port of svc.spec.ports) port.nodePort = nextNodePort++;
        if (kind >= 0.85 && kind < 0.9) svc.spec.externalTrafficPolicy = 'Local';
      }
      if (kind >= 0.9) {
        svc.status.loadBalancer.ingress = [{ ip: ipv4Plus('198.18.0.1', i), ipMode: 'VIP' }];
        if (kind >= 0.95) {
          svc.spec.externalTrafficPolicy = 'Local';
          svc.spec.healthCheckNodePort = nextNodePort++;
          svc.spec.loadBalancerSourceRanges = ['203.0.113.0/24', '198.51.100.0/24'];
        }
      }
      if (affinity) {
        svc.spec.sessionAffinity = 'ClientIP';
        svc.spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: 10800 } };
      }
    }));
    manifests.push(makeSlice(namespace, name, 1, (eps) => {
      eps.metadata.name = `${name}-${(i * 7919).toString(36).padStart(5, 'a').slice(-5)}`;
      eps.ports = [{ name: 'http', port: 8080, protocol: 'TCP' }];
      if (twoPorts) eps.ports.push({ name: 'https', port: 8443, protocol: 'TCP' });
      for (let e = 0; e < options.endpointsPerService; e++) {
        const terminating = random() < 0.02;
        const node = 1 + Math.floor(random() * options.nodes);
        eps.endpoints.push({
          addresses: [ipv4Plus('10.244.0.1', nextPod++)],
          conditions: terminating ? { ready: false, serving: true, terminating: true } : { ready: true, serving: true, terminating: false },
          nodeName: `node-${node}`,
        });
      }
    }));
  }
  return manifests;
}

/** One `kubectl get -o yaml` style List per kind, as the files of rules/large-cluster. */
export function largeClusterManifestFiles(): { file: string; text: string }[] {
  // 50 services x 20 endpoints (1040 endpoint entries, some services have two ports): over the 1000-endpoint threshold of large-cluster mode, with
  // golden files that stay a few hundred KB.
  const manifests = generateClusterManifests({ seed: 20240601, services: 50, endpointsPerService: 20, nodes: 3 });
  const list = (kind: Manifest['kind']) =>
    stringify({ apiVersion: 'v1', items: manifests.filter((m) => m.kind === kind), kind: 'List', metadata: { resourceVersion: '' } }, { lineWidth: 0, sortMapEntries: true, indentSeq: false, aliasDuplicateObjects: false });
  const header = '# Generated by test/helpers/regenerate-goldens.ts --large-cluster-manifests (seeded); do not edit.\n';
  return [
    { file: 'nodes.yaml', text: header + list('Node') },
    { file: 'services.yaml', text: header + list('Service') },
    { file: 'endpointslices.yaml', text: header + list('EndpointSlice') },
    { file: 'kube-proxy.yaml', text: header + stringify(manifests.find((m) => m.kind === 'KubeProxyConfiguration'), { lineWidth: 0, indentSeq: false }) },
  ];
}

// ---------------------------------------------------------------------------------------------
// Packet flows: kube-proxy's packetFlowTest tables, run through kpsim's tracer twice.

/** What kpsim's own (kernel) semantics should give, when it is not what the kube-proxy row implies. */
export interface KernelExpectation {
  readonly verdict: Verdict;
  readonly endpoints?: readonly string[];
  readonly masq: boolean;
  /** Why the kernel's answer differs from kube-proxy's test tracer here. */
  readonly why: string;
}

/** kube-proxy's packetFlowTest: a packet and what its test tracer outputs for it. */
export interface PacketFlowTest {
  readonly name: string;
  readonly sourceIP: string;
  /** TCP when left out, as in kube-proxy's tests. */
  readonly protocol?: Protocol;
  readonly destIP: string;
  readonly destPort: number;
  /** "10.180.0.1:80, 10.180.2.1:80", "REJECT", "DROP", "ACCEPT" or "" (no match). */
  readonly output: string;
  readonly masq?: boolean;
  readonly kernel?: KernelExpectation;
}

const SPECIAL_OUTPUTS = new Set(['ACCEPT', 'DROP', 'REJECT']);

/** What the kube-proxy row means for a real node: the verdict, the endpoints (sorted), masquerading. */
export function kernelExpectationOf(c: PacketFlowTest): Omit<KernelExpectation, 'why'> {
  if (c.kernel) return c.kernel;
  if (c.output === '') return { verdict: 'NONE', endpoints: [], masq: c.masq ?? false };
  if (SPECIAL_OUTPUTS.has(c.output)) return { verdict: c.output as Verdict, endpoints: [], masq: c.masq ?? false };
  return { verdict: 'DNAT', endpoints: c.output.split(', ').sort(), masq: c.masq ?? false };
}

function describeHops(hops: readonly Hop[]): string {
  return hops.map((h) => `  ${h.table} ${h.rule}${h.probability !== undefined ? ` (p=${h.probability.toFixed(4)})` : ''}`).join('\n');
}

/**
 * One subtest per row: with kube-proxy's test-tracer semantics the output string and masq flag
 * must be kube-proxy's; with kpsim's kernel semantics the verdict, the endpoints (each equally
 * likely) and masquerading must be what that output means on a node.
 */
export async function runPacketFlowTests(t: TestContext, ruleset: Ruleset | readonly Ruleset[], nodeIPs: readonly string[], cases: readonly PacketFlowTest[]): Promise<void> {
  const rulesets: readonly Ruleset[] = Array.isArray(ruleset) ? ruleset : [ruleset as Ruleset];
  const tracer = createTracer(rulesets, { localAddresses: nodeIPs });
  for (const c of cases) {
    await t.test(c.name, () => {
      const packet = { proto: protocolWord(c.protocol ?? 'TCP'), src: c.sourceIP, dst: c.destIP, dport: c.destPort };
      const what = `a ${packet.proto} packet from ${c.sourceIP} to ${c.destIP}:${c.destPort}`;

      const kp = tracer.trace(packet, { semantics: 'kube-proxy-test' });
      const got = kp.kubeProxyTest!;
      assert.deepEqual({ output: got.output, masq: got.masq }, { output: c.output, masq: c.masq ?? false }, `kube-proxy test tracer, ${what}; matched:\n${describeHops(kp.hops)}`);

      const want = kernelExpectationOf(c);
      const kernel = tracer.trace(packet);
      assert.deepEqual(
        { verdict: kernel.verdict, endpoints: kernel.endpoints, masq: kernel.masquerade },
        { verdict: want.verdict, endpoints: want.endpoints ?? [], masq: want.masq },
        `kernel semantics, ${what}${c.kernel ? ` (${c.kernel.why})` : ''}; matched:\n${describeHops(kernel.hops)}`,
      );
      if (kernel.verdict === 'DNAT' && kernel.outcomes === undefined) {
        // The --probability ladder must make every endpoint equally likely.
        const n = kernel.endpoints.length;
        for (const endpoint of kernel.endpoints) {
          assert.ok(Math.abs(kernel.probabilities[endpoint]! - 1 / n) < 1e-6, `${endpoint} has probability ${kernel.probabilities[endpoint]}, not 1/${n}`);
        }
      }
    });
  }
}
