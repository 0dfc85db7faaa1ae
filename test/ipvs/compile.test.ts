/**
 * The IPVS table compiler against kube-proxy's IPVS proxier (syncProxyRules, syncService,
 * syncEndpoint, graceful_termination.go): which virtual servers exist, with which flags, and which
 * real servers in which kernel list order; then the iptables rules IPVS mode keeps
 * (writeIptablesRules). Expectations are worked out from those sources, case by case.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isKpsimError } from '../../src/errors.js';
import { type IpvsCompiled, compileIpvs } from '../../src/ipvs/compile.js';
import { renderRule } from '../../src/iptables/render.js';
import { isBuiltinChain, type TableName } from '../../src/iptables/types.js';
import { SVC_F_PERSISTENT, SVC_F_SCHED2, destAddr, schedulerFlagNames, serviceAddr } from '../../src/ipvs/table.js';
import { clusterFromManifests } from '../../src/manifest/load.js';
import { buildProxierState, resolveNode } from '../../src/tracker/proxier-state.js';
import {
  type KubeProxyConfigurationManifest, type Manifest, type ServiceManifest, ep, fixtureState, makeService, makeSlice, manifestsToYAML, tcpPort,
} from '../helpers/cluster-builders.js';

type ConfigChange = (config: KubeProxyConfigurationManifest) => void;

/** One line per virtual server, in creation order: "TCP 172.30.0.41:80 rr ClusterIP: dest:w, ..." with dests in list order. */
function describeTable(compiled: IpvsCompiled): string[] {
  return compiled.table.services.map((vs) => {
    const flags = schedulerFlagNames(vs);
    const persistent = vs.flags & SVC_F_PERSISTENT ? ` persistent ${vs.timeoutSeconds}/${vs.netmaskPrefix}` : '';
    const dests = vs.dests.map((d) => `${destAddr(d)}:w${d.weight}`).join(', ');
    return `${vs.protocol} ${serviceAddr(vs)} ${vs.scheduler}${flags.length > 0 ? ` (${flags.join(',')})` : ''}${persistent} ${vs.origin!.kind}: ${dests}`;
  });
}

const p80 = [{ name: 'p80', port: 80, protocol: 'TCP' as const }];

/** A TCP and a UDP port with one ready, one serving-terminating, one terminating and one unready endpoint. */
function readyTerminatingAndUnready(): Manifest[] {
  return [
    makeService('ns1', 'term', (s) => { s.spec.clusterIP = '172.30.0.49'; s.spec.ports = [tcpPort('p80', 80), { name: 'dns', protocol: 'UDP', port: 53 }]; }),
    makeSlice('ns1', 'term', 1, (eps) => {
      eps.endpoints = [
        ep('10.180.0.1'),
        ep('10.180.0.2', undefined, { ready: false, serving: true, terminating: true }),
        ep('10.180.0.3', undefined, { ready: false, serving: false, terminating: true }),
        ep('10.180.0.4', undefined, { ready: false, serving: false, terminating: false }),
      ];
      eps.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }];
    }),
  ];
}

interface CompileCase {
  name: string;
  manifests: Manifest[];
  config?: ConfigChange;
  family?: 4 | 6;
  options?: Parameters<typeof compileIpvs>[1];
  want: string[];
  bound?: string[];
}

const cases: CompileCase[] = [
  {
    name: 'ClusterIP: one virtual server, weight 1, the dest added last first (added in endpoint text order: .10:80 < .1:80 < .2:80)',
    manifests: [
      makeService('ns1', 'svc1', (s) => { s.spec.clusterIP = '172.30.0.41'; s.spec.ports = [tcpPort('p80', 80)]; }),
      makeSlice('ns1', 'svc1', 1, (eps) => { eps.endpoints = [ep('10.180.0.2'), ep('10.180.0.1'), ep('10.180.0.10')]; eps.ports = p80; }),
    ],
    want: ['TCP 172.30.0.41:80 rr ClusterIP: 10.180.0.2:80:w1, 10.180.0.1:80:w1, 10.180.0.10:80:w1'],
    bound: ['172.30.0.41'],
  },
  {
    name: 'a service without endpoints still gets its (empty) virtual server',
    manifests: [makeService('ns1', 'empty', (s) => { s.spec.clusterIP = '172.30.0.46'; s.spec.ports = [tcpPort('p80', 80)]; })],
    want: ['TCP 172.30.0.46:80 rr ClusterIP: '],
  },
  {
    name: 'NodePort: one virtual server per node address, none on loopback, node addresses not bound',
    manifests: [
      makeService('ns1', 'np', (s) => { s.spec.type = 'NodePort'; s.spec.clusterIP = '172.30.0.43'; s.spec.ports = [tcpPort('p80', 80, { nodePort: 3003 })]; }),
      makeSlice('ns1', 'np', 1, (eps) => { eps.endpoints = [ep('10.180.0.3')]; eps.ports = p80; }),
    ],
    want: [
      'TCP 172.30.0.43:80 rr ClusterIP: 10.180.0.3:80:w1',
      'TCP 192.168.0.2:3003 rr NodePort: 10.180.0.3:80:w1',
      'TCP 192.168.1.2:3003 rr NodePort: 10.180.0.3:80:w1',
      'TCP 192.168.99.11:3003 rr NodePort: 10.180.0.3:80:w1',
    ],
    bound: ['172.30.0.43'],
  },
  {
    name: 'nodePortAddresses 192.168.0.0/24: only the matching node address',
    manifests: [makeService('ns1', 'np', (s) => { s.spec.type = 'NodePort'; s.spec.clusterIP = '172.30.0.43'; s.spec.ports = [tcpPort('p80', 80, { nodePort: 3003 })]; })],
    config: (c) => { c.nodePortAddresses = ['192.168.0.0/24', '127.0.0.1/32', 'fd00::/8']; },
    want: ['TCP 172.30.0.43:80 rr ClusterIP: ', 'TCP 192.168.0.2:3003 rr NodePort: '],
  },
  {
    name: 'nodePortAddresses ["primary"]: the node\'s primary address only',
    manifests: [makeService('ns1', 'np', (s) => { s.spec.type = 'NodePort'; s.spec.clusterIP = '172.30.0.43'; s.spec.ports = [tcpPort('p80', 80, { nodePort: 3003 })]; })],
    config: (c) => { c.nodePortAddresses = ['primary']; },
    want: ['TCP 172.30.0.43:80 rr ClusterIP: ', 'TCP 192.168.0.2:3003 rr NodePort: '],
  },
  {
    name: 'nodePortAddresses covering the service range: GetNodeIPs sees kube-ipvs0\'s VIPs too',
    manifests: [
      makeService('ns1', 'np', (s) => { s.spec.type = 'NodePort'; s.spec.clusterIP = '172.30.0.43'; s.spec.ports = [tcpPort('p80', 80, { nodePort: 3003 })]; }),
      makeService('ns1', 'other', (s) => { s.spec.clusterIP = '172.30.0.44'; s.spec.ports = [tcpPort('p80', 80)]; }),
    ],
    config: (c) => { c.nodePortAddresses = ['172.30.0.0/16']; },
    want: [
      'TCP 172.30.0.43:80 rr ClusterIP: ',
      'TCP 172.30.0.43:3003 rr NodePort: ',
      'TCP 172.30.0.44:3003 rr NodePort: ',
      'TCP 172.30.0.44:80 rr ClusterIP: ',
    ],
  },
  {
    name: 'externalIPs: a virtual server each; bound unless the node owns the address',
    manifests: [
      makeService('ns1', 'ext', (s) => { s.spec.clusterIP = '172.30.0.44'; s.spec.externalIPs = ['192.168.99.33', '192.168.99.11']; s.spec.ports = [tcpPort('p80', 80)]; }),
      makeSlice('ns1', 'ext', 1, (eps) => { eps.endpoints = [ep('10.180.0.4')]; eps.ports = p80; }),
    ],
    want: [
      'TCP 172.30.0.44:80 rr ClusterIP: 10.180.0.4:80:w1',
      'TCP 192.168.99.33:80 rr ExternalIP: 10.180.0.4:80:w1',
      'TCP 192.168.99.11:80 rr ExternalIP: 10.180.0.4:80:w1',
    ],
    bound: ['172.30.0.44', '192.168.99.33'],
  },
  {
    name: 'LoadBalancer with ClientIP affinity: every virtual server persistent, /32',
    manifests: [
      makeService('ns5', 'svc5', (s) => {
        s.spec.type = 'LoadBalancer'; s.spec.clusterIP = '172.30.0.45'; s.spec.ports = [tcpPort('p80', 80, { nodePort: 3002 })];
        s.status.loadBalancer.ingress = [{ ip: '5.6.7.8' }, { ip: '5.6.7.9', ipMode: 'Proxy' }];
        s.spec.sessionAffinity = 'ClientIP'; s.spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: 600 } };
      }),
      makeSlice('ns5', 'svc5', 1, (eps) => { eps.endpoints = [ep('10.180.0.3')]; eps.ports = p80; }),
    ],
    want: [
      'TCP 172.30.0.45:80 rr persistent 600/32 ClusterIP: 10.180.0.3:80:w1',
      'TCP 5.6.7.8:80 rr persistent 600/32 LoadBalancer: 10.180.0.3:80:w1',
      'TCP 192.168.0.2:3002 rr persistent 600/32 NodePort: 10.180.0.3:80:w1',
      'TCP 192.168.1.2:3002 rr persistent 600/32 NodePort: 10.180.0.3:80:w1',
      'TCP 192.168.99.11:3002 rr persistent 600/32 NodePort: 10.180.0.3:80:w1',
    ],
    bound: ['172.30.0.45', '5.6.7.8'],
  },
  {
    name: 'externalTrafficPolicy Local: external addresses use the local endpoints, the ClusterIP all of them',
    manifests: [
      makeService('ns2', 'svc2', (s) => {
        s.spec.type = 'LoadBalancer'; s.spec.externalTrafficPolicy = 'Local'; s.spec.clusterIP = '172.30.0.42';
        s.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })]; s.status.loadBalancer.ingress = [{ ip: '1.2.3.4' }];
        s.spec.externalIPs = ['192.168.99.22']; s.spec.healthCheckNodePort = 30000;
      }),
      makeSlice('ns2', 'svc2', 1, (eps) => { eps.endpoints = [ep('10.180.0.2'), ep('10.180.0.5', 'test-node')]; eps.ports = p80; }),
    ],
    want: [
      'TCP 172.30.0.42:80 rr ClusterIP: 10.180.0.5:80:w1, 10.180.0.2:80:w1',
      'TCP 192.168.99.22:80 rr ExternalIP: 10.180.0.5:80:w1',
      'TCP 1.2.3.4:80 rr LoadBalancer: 10.180.0.5:80:w1',
      'TCP 192.168.0.2:3001 rr NodePort: 10.180.0.5:80:w1',
      'TCP 192.168.1.2:3001 rr NodePort: 10.180.0.5:80:w1',
      'TCP 192.168.99.11:3001 rr NodePort: 10.180.0.5:80:w1',
    ],
  },
  {
    name: 'externalTrafficPolicy Local without a local endpoint: kube-proxy falls back to all endpoints (#97081)',
    manifests: [
      makeService('ns2', 'svc2', (s) => {
        s.spec.type = 'NodePort'; s.spec.externalTrafficPolicy = 'Local'; s.spec.clusterIP = '172.30.0.42';
        s.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })];
      }),
      makeSlice('ns2', 'svc2', 1, (eps) => { eps.endpoints = [ep('10.180.0.2', 'node-b'), ep('10.180.0.3', 'node-c')]; eps.ports = p80; }),
    ],
    want: [
      'TCP 172.30.0.42:80 rr ClusterIP: 10.180.0.3:80:w1, 10.180.0.2:80:w1',
      'TCP 192.168.0.2:3001 rr NodePort: 10.180.0.3:80:w1, 10.180.0.2:80:w1',
      'TCP 192.168.1.2:3001 rr NodePort: 10.180.0.3:80:w1, 10.180.0.2:80:w1',
      'TCP 192.168.99.11:3001 rr NodePort: 10.180.0.3:80:w1, 10.180.0.2:80:w1',
    ],
  },
  {
    name: 'internalTrafficPolicy Local: the ClusterIP gets only local endpoints, and none when there are none here',
    manifests: [
      makeService('ns1', 'local', (s) => { s.spec.clusterIP = '172.30.0.47'; s.spec.internalTrafficPolicy = 'Local'; s.spec.ports = [tcpPort('p80', 80)]; }),
      makeSlice('ns1', 'local', 1, (eps) => { eps.endpoints = [ep('10.180.0.7', 'test-node'), ep('10.180.0.8', 'node-b')]; eps.ports = p80; }),
      makeService('ns1', 'remote', (s) => { s.spec.clusterIP = '172.30.0.48'; s.spec.internalTrafficPolicy = 'Local'; s.spec.ports = [tcpPort('p80', 80)]; }),
      makeSlice('ns1', 'remote', 1, (eps) => { eps.endpoints = [ep('10.180.0.9', 'node-b')]; eps.ports = p80; }),
    ],
    want: ['TCP 172.30.0.47:80 rr ClusterIP: 10.180.0.7:80:w1', 'TCP 172.30.0.48:80 rr ClusterIP: '],
  },
  {
    name: 'one sync writes the selected endpoints only: serving-terminating, not-serving and not-ready endpoints are no real servers',
    manifests: readyTerminatingAndUnready(),
    want: [
      'UDP 172.30.0.49:53 rr ClusterIP: 10.180.0.1:53:w1',
      'TCP 172.30.0.49:80 rr ClusterIP: 10.180.0.1:80:w1',
    ],
  },
  {
    name: 'over time (gracefulTermination): terminating TCP endpoints are still draining at weight 0, in their list places; UDP ones are gone',
    manifests: readyTerminatingAndUnready(),
    options: { gracefulTermination: true },
    // UDP dests are deleted at once (IsRsGracefulTerminationNeeded); an unready, not terminating endpoint is simply absent.
    want: [
      'UDP 172.30.0.49:53 rr ClusterIP: 10.180.0.1:53:w1',
      'TCP 172.30.0.49:80 rr ClusterIP: 10.180.0.3:80:w0, 10.180.0.2:80:w0, 10.180.0.1:80:w1',
    ],
  },
  {
    name: 'no ready endpoint: serving-terminating ones take traffic (weight 1), a non-serving one is no real server',
    manifests: [
      makeService('ns1', 'term', (s) => { s.spec.clusterIP = '172.30.0.49'; s.spec.ports = [tcpPort('p80', 80)]; }),
      makeSlice('ns1', 'term', 1, (eps) => {
        eps.endpoints = [ep('10.180.0.2', undefined, { ready: false, serving: true, terminating: true }), ep('10.180.0.3', undefined, { ready: false, serving: false, terminating: true })];
        eps.ports = p80;
      }),
    ],
    want: ['TCP 172.30.0.49:80 rr ClusterIP: 10.180.0.2:80:w1'],
  },
  {
    name: 'over time (gracefulTermination), no ready endpoint: serving-terminating ones take traffic, non-serving ones drain',
    manifests: [
      makeService('ns1', 'term', (s) => { s.spec.clusterIP = '172.30.0.49'; s.spec.ports = [tcpPort('p80', 80)]; }),
      makeSlice('ns1', 'term', 1, (eps) => {
        eps.endpoints = [ep('10.180.0.2', undefined, { ready: false, serving: true, terminating: true }), ep('10.180.0.3', undefined, { ready: false, serving: false, terminating: true })];
        eps.ports = p80;
      }),
    ],
    options: { gracefulTermination: true },
    want: ['TCP 172.30.0.49:80 rr ClusterIP: 10.180.0.3:80:w0, 10.180.0.2:80:w1'],
  },
  {
    name: 'over time (gracefulTermination): a node-local virtual server drains only local terminating endpoints',
    manifests: [
      makeService('ns2', 'svc2', (s) => { s.spec.type = 'NodePort'; s.spec.externalTrafficPolicy = 'Local'; s.spec.clusterIP = '172.30.0.42'; s.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })]; }),
      makeSlice('ns2', 'svc2', 1, (eps) => {
        eps.endpoints = [
          ep('10.180.0.5', 'test-node'),
          ep('10.180.0.6', 'test-node', { ready: false, serving: true, terminating: true }),
          ep('10.180.0.7', 'node-b', { ready: false, serving: true, terminating: true }),
        ];
        eps.ports = p80;
      }),
    ],
    config: (c) => { c.nodePortAddresses = ['192.168.0.2/32']; },
    options: { gracefulTermination: true },
    want: [
      'TCP 172.30.0.42:80 rr ClusterIP: 10.180.0.7:80:w0, 10.180.0.6:80:w0, 10.180.0.5:80:w1',
      'TCP 192.168.0.2:3001 rr NodePort: 10.180.0.6:80:w0, 10.180.0.5:80:w1',
    ],
  },
  {
    name: 'scheduler mh: kube-proxy adds FlagSourceHash (0x10), which ipvsadm names mh-port',
    manifests: [makeService('ns1', 'svc1', (s) => { s.spec.clusterIP = '172.30.0.41'; s.spec.ports = [tcpPort('p80', 80)]; })],
    options: { scheduler: 'mh' },
    want: ['TCP 172.30.0.41:80 mh (mh-port) ClusterIP: '],
  },
  {
    name: 'scheduler sh: no flag (kube-proxy sets the source-hash flag for mh only)',
    manifests: [makeService('ns1', 'svc1', (s) => { s.spec.clusterIP = '172.30.0.41'; s.spec.ports = [tcpPort('p80', 80)]; })],
    options: { scheduler: 'sh' },
    want: ['TCP 172.30.0.41:80 sh ClusterIP: '],
  },
  {
    name: 'IPv6: the IPv6 proxier\'s virtual servers, persistence netmask /128',
    family: 6,
    manifests: [
      makeService('ns1', 'v6', (s) => {
        s.spec.type = 'NodePort'; s.spec.clusterIP = 'fd00:172:30::41'; s.spec.ipFamilies = ['IPv6']; s.spec.ports = [tcpPort('p80', 80, { nodePort: 3080 })];
        s.spec.sessionAffinity = 'ClientIP';
      }),
      makeSlice('ns1', 'v6', 1, (eps) => { eps.addressType = 'IPv6'; eps.endpoints = [ep('fd00:10::1'), ep('fd00:10::2')]; eps.ports = p80; }),
    ],
    want: [
      'TCP [fd00:172:30::41]:80 rr persistent 10800/128 ClusterIP: [fd00:10::2]:80:w1, [fd00:10::1]:80:w1',
      'TCP [2001:db8::1]:3080 rr persistent 10800/128 NodePort: [fd00:10::2]:80:w1, [fd00:10::1]:80:w1',
      'TCP [2001:db8:1::2]:3080 rr persistent 10800/128 NodePort: [fd00:10::2]:80:w1, [fd00:10::1]:80:w1',
    ],
  },
];

for (const c of cases) {
  test(`compile: ${c.name}`, () => {
    const state = fixtureState(c.manifests, { ...(c.family !== undefined ? { family: c.family } : {}), ...(c.config ? { config: c.config } : {}) });
    const compiled = compileIpvs(state, c.options);
    assert.deepEqual(describeTable(compiled), c.want);
    if (c.bound) assert.deepEqual([...compiled.boundAddresses], c.bound);
    for (const vs of compiled.table.services) {
      for (const d of vs.dests) assert.equal(d.forward, 'Masq', 'kube-proxy only uses NAT');
      if (c.options?.scheduler !== 'mh') assert.equal(vs.flags & SVC_F_SCHED2, 0);
    }
  });
}

test('two service ports claiming one address: the later one\'s real servers, and a warning', () => {
  const state = fixtureState([
    makeService('ns1', 'a', (s) => { s.spec.clusterIP = '172.30.0.41'; s.spec.externalIPs = ['192.168.99.50']; s.spec.ports = [tcpPort('p80', 80)]; }),
    makeService('ns1', 'b', (s) => { s.spec.clusterIP = '172.30.0.42'; s.spec.externalIPs = ['192.168.99.50']; s.spec.ports = [tcpPort('p80', 80)]; }),
    makeSlice('ns1', 'b', 1, (eps) => { eps.endpoints = [ep('10.180.0.9')]; eps.ports = p80; }),
  ]);
  const compiled = compileIpvs(state);
  const shared = compiled.table.services.filter((vs) => vs.address === '192.168.99.50');
  assert.equal(shared.length, 1);
  assert.deepEqual(shared[0]!.dests.map(destAddr), ['10.180.0.9:80']);
  assert.match(compiled.warnings.join('\n'), /ns1\/b:p80 \(ExternalIP\) and ns1\/a:p80 \(ExternalIP\) both claim 192\.168\.99\.50:80\/TCP/);
});

const schedulerErrorCases: { name: string; configText?: string; override?: string; wantPath: string }[] = [
  { name: 'from the configuration', configText: 'ipvs:\n  scheduler: fancy\n', wantPath: 'ipvs.scheduler' },
  { name: 'from --scheduler', override: 'fancy', wantPath: '--scheduler' },
];
for (const c of schedulerErrorCases) {
  test(`an unknown scheduler ${c.name} is KPSIM_ERR_IPVS_UNKNOWN_SCHEDULER, naming the valid ones`, () => {
    const config = `apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n${c.configText ?? ''}`;
    const services = manifestsToYAML([makeService('ns1', 'svc1', (s) => { s.spec.clusterIP = '172.30.0.41'; s.spec.ports = [tcpPort('p80', 80)]; })]);
    const cluster = clusterFromManifests([{ file: 'svc.yaml', text: services }, { file: 'kube-proxy.yaml', text: config }]);
    const state = buildProxierState(cluster, resolveNode(cluster, { nodeIPs: ['192.168.0.2'] }), 4);
    let caught: unknown;
    try {
      compileIpvs(state, c.override !== undefined ? { scheduler: c.override } : {});
    } catch (e) {
      caught = e;
    }
    assert.ok(isKpsimError(caught), `compiled with an unknown scheduler (got ${String(caught)})`);
    assert.equal(caught.code, 'KPSIM_ERR_IPVS_UNKNOWN_SCHEDULER');
    assert.equal(caught.path, c.wantPath);
    assert.match(caught.message, /"fancy".*rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos/);
  });
}

test('the scheduler defaults to rr, and the configuration\'s ipvs.scheduler is used', () => {
  const services = manifestsToYAML([makeService('ns1', 'svc1', (s) => { s.spec.clusterIP = '172.30.0.41'; s.spec.ports = [tcpPort('p80', 80)]; })]);
  for (const [configText, want] of [['', 'rr'], ['ipvs:\n  scheduler: wlc\n', 'wlc']] as const) {
    const config = `apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n${configText}`;
    const cluster = clusterFromManifests([{ file: 'svc.yaml', text: services }, { file: 'kube-proxy.yaml', text: config }]);
    const compiled = compileIpvs(buildProxierState(cluster, resolveNode(cluster, { nodeIPs: ['192.168.0.2'] }), 4));
    assert.equal(compiled.scheduler, want);
    assert.equal(compiled.table.services[0]!.scheduler, want);
  }
});

// ---------------------------------------------------------------- the iptables rules IPVS mode keeps

function rulesOf(compiled: IpvsCompiled, table: TableName, chain: string): string[] {
  return compiled.ruleset.tables.get(table)!.chains.get(chain)!.rules.map((r) => renderRule(r));
}

const oneService = (mutate: (s: ServiceManifest) => void = () => {}): Manifest[] => [
  makeService('ns1', 'svc1', (s) => { s.spec.clusterIP = '172.30.0.41'; s.spec.ports = [tcpPort('p80', 80)]; mutate(s); }),
];

const clusterIPRuleCases: { name: string; config?: ConfigChange; want: string }[] = [
  {
    name: 'with a local detector: off-cluster traffic to a VIP is masqueraded',
    want: '-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ',
  },
  {
    name: 'masqueradeAll: all of it',
    config: (c) => { c.iptables = { masqueradeAll: true }; },
    want: '-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ',
  },
  {
    name: 'no local detector: node traffic with a VIP as source (src,dst)',
    config: (c) => { delete c.clusterCIDR; },
    want: '-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP src,dst -j KUBE-MARK-MASQ',
  },
];
for (const c of clusterIPRuleCases) {
  test(`iptables: KUBE-CLUSTER-IP rule ${c.name}`, () => {
    const compiled = compileIpvs(fixtureState(oneService(), c.config ? { config: c.config } : {}));
    assert.deepEqual(rulesOf(compiled, 'nat', 'KUBE-SERVICES'), [
      '-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN',
      c.want,
      '-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT',
      '-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT',
    ]);
  });
}

test('iptables: external IPs are marked, then accepted from off the machine or when local; -LOCAL ones only accepted', () => {
  const compiled = compileIpvs(fixtureState([
    makeService('ns1', 'a', (s) => { s.spec.clusterIP = '172.30.0.41'; s.spec.externalIPs = ['192.168.99.33']; s.spec.ports = [tcpPort('p80', 80)]; }),
    makeService('ns1', 'b', (s) => { s.spec.type = 'NodePort'; s.spec.clusterIP = '172.30.0.42'; s.spec.externalTrafficPolicy = 'Local'; s.spec.externalIPs = ['192.168.99.44']; s.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })]; }),
  ]));
  const ext = '-m comment --comment "Kubernetes service external ip + port for masquerade and filter purpose" -m set --match-set KUBE-EXTERNAL-IP dst,dst';
  const extLocal = '-m comment --comment "Kubernetes service external ip + port with externalTrafficPolicy=local" -m set --match-set KUBE-EXTERNAL-IP-LOCAL dst,dst';
  assert.deepEqual(rulesOf(compiled, 'nat', 'KUBE-SERVICES'), [
    '-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN',
    '-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ',
    `-A KUBE-SERVICES ${ext} -j KUBE-MARK-MASQ`,
    `-A KUBE-SERVICES ${ext} -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT`,
    `-A KUBE-SERVICES ${ext} -m addrtype --dst-type LOCAL -j ACCEPT`,
    `-A KUBE-SERVICES ${extLocal} -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT`,
    `-A KUBE-SERVICES ${extLocal} -m addrtype --dst-type LOCAL -j ACCEPT`,
    '-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT',
    '-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT',
  ]);
  // The -LOCAL node port set RETURNs before the plain set marks.
  assert.deepEqual(rulesOf(compiled, 'nat', 'KUBE-NODE-PORT'), [
    '-A KUBE-NODE-PORT -p tcp -m comment --comment "Kubernetes nodeport TCP port with externalTrafficPolicy=local" -m set --match-set KUBE-NODE-PORT-LOCAL-TCP dst -j RETURN',
    '-A KUBE-NODE-PORT -p tcp -m comment --comment "Kubernetes nodeport TCP port for masquerade purpose" -m set --match-set KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ',
  ]);
});

test('iptables: a source range without the node blocks the node\'s own access to the VIP (#119656)', () => {
  const lb = (ranges: string[]): Manifest[] => [makeService('ns1', 'lb', (s) => {
    s.spec.type = 'LoadBalancer'; s.spec.clusterIP = '172.30.0.60'; s.spec.ports = [tcpPort('p443', 443, { nodePort: 31443 })];
    s.status.loadBalancer.ingress = [{ ip: '198.51.100.9' }]; s.spec.loadBalancerSourceRanges = ranges;
  })];
  const outside = compileIpvs(fixtureState(lb(['203.0.113.0/24'])));
  assert.deepEqual(rulesOf(outside, 'filter', 'KUBE-IPVS-OUT-FILTER'), ['-A KUBE-IPVS-OUT-FILTER -s 198.51.100.9 -m ipvs --vaddr 198.51.100.9 --vproto tcp --vport 443 -j DROP']);
  assert.deepEqual(rulesOf(outside, 'filter', 'KUBE-SOURCE-RANGES-FIREWALL'), [
    '-A KUBE-SOURCE-RANGES-FIREWALL -m comment --comment "Kubernetes service load balancer ip + port + source cidr for packet filter purpose" -m set --match-set KUBE-LOAD-BALANCER-SOURCE-CIDR dst,dst,src -j RETURN',
    '-A KUBE-SOURCE-RANGES-FIREWALL -j DROP',
  ]);
  const inside = compileIpvs(fixtureState(lb(['192.168.0.0/24'])));
  assert.deepEqual(rulesOf(inside, 'filter', 'KUBE-IPVS-OUT-FILTER'), []);
  assert.deepEqual(rulesOf(inside, 'filter', 'KUBE-SOURCE-RANGES-FIREWALL'), [
    '-A KUBE-SOURCE-RANGES-FIREWALL -m comment --comment "Kubernetes service load balancer ip + port + source cidr for packet filter purpose" -m set --match-set KUBE-LOAD-BALANCER-SOURCE-CIDR dst,dst,src -j RETURN',
    '-A KUBE-SOURCE-RANGES-FIREWALL -m comment --comment "Kubernetes service load balancer ip + port + source IP for packet filter purpose" -m set --match-set KUBE-LOAD-BALANCER-SOURCE-IP dst,dst,src -j RETURN',
    '-A KUBE-SOURCE-RANGES-FIREWALL -j DROP',
  ]);
});

test('iptables: the fixed chains, in kube-proxy\'s order, with the built-in jumps ensured by prepending', () => {
  const compiled = compileIpvs(fixtureState(oneService()));
  assert.deepEqual(rulesOf(compiled, 'filter', 'INPUT'), [
    '-A INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER',
    '-A INPUT -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL',
    '-A INPUT -m comment --comment "kubernetes health check rules" -j KUBE-NODE-PORT',
  ]);
  assert.deepEqual(rulesOf(compiled, 'filter', 'FORWARD'), [
    '-A FORWARD -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL',
    '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
  ]);
  assert.deepEqual(rulesOf(compiled, 'filter', 'KUBE-IPVS-FILTER'), [
    '-A KUBE-IPVS-FILTER -m set --match-set KUBE-LOAD-BALANCER dst,dst -j RETURN',
    '-A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j RETURN',
    '-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP dst,dst -j RETURN',
    '-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP-LOCAL dst,dst -j RETURN',
    '-A KUBE-IPVS-FILTER -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j RETURN',
    '-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT',
  ]);
  assert.deepEqual(rulesOf(compiled, 'nat', 'KUBE-POSTROUTING'), [
    '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
    '-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000',
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE',
  ]);
  assert.deepEqual(rulesOf(compiled, 'nat', 'KUBE-MARK-MASQ'), ['-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000']);
  assert.deepEqual([...compiled.ruleset.tables.keys()], ['nat', 'filter']);
  assert.deepEqual([...compiled.ruleset.tables.get('nat')!.chains.keys()], ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING', 'KUBE-SERVICES', 'KUBE-POSTROUTING', 'KUBE-NODE-PORT', 'KUBE-LOAD-BALANCER', 'KUBE-MARK-MASQ']);
  assert.deepEqual([...compiled.ruleset.tables.get('filter')!.chains.keys()], ['INPUT', 'FORWARD', 'OUTPUT', 'KUBE-FORWARD', 'KUBE-NODE-PORT', 'KUBE-PROXY-FIREWALL', 'KUBE-SOURCE-RANGES-FIREWALL', 'KUBE-IPVS-FILTER', 'KUBE-IPVS-OUT-FILTER']);
});

test('iptables: --random-fully, IPv6 loopback and KUBE-6- set names', () => {
  const compiled = compileIpvs(fixtureState([makeService('ns1', 'v6', (s) => { s.spec.clusterIP = 'fd00:172:30::41'; s.spec.ipFamilies = ['IPv6']; s.spec.ports = [tcpPort('p80', 80)]; })], { family: 6 }), { randomFully: true });
  const services = rulesOf(compiled, 'nat', 'KUBE-SERVICES');
  assert.equal(services[0], '-A KUBE-SERVICES -s ::1/128 -j RETURN');
  assert.ok(services.includes('-A KUBE-SERVICES -m set --match-set KUBE-6-CLUSTER-IP dst,dst -j ACCEPT'), services.join('\n'));
  assert.equal(rulesOf(compiled, 'nat', 'KUBE-POSTROUTING').at(-1), '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully');
});

test('iptables: every jump goes to a declared chain or a built-in target, and every set exists', () => {
  const compiled = compileIpvs(fixtureState([
    ...oneService((s) => { s.spec.type = 'LoadBalancer'; s.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })]; s.status.loadBalancer.ingress = [{ ip: '1.2.3.4' }]; s.spec.loadBalancerSourceRanges = ['203.0.113.0/24']; s.spec.externalIPs = ['192.168.99.9']; }),
    makeSlice('ns1', 'svc1', 1, (eps) => { eps.endpoints = [ep('10.180.0.1', 'test-node')]; eps.ports = p80; }),
  ]));
  const targets = new Set(['ACCEPT', 'DROP', 'REJECT', 'RETURN', 'MARK', 'MASQUERADE']);
  const setNames = new Set([...compiled.ipsets.values()].map((s) => s.name));
  for (const table of compiled.ruleset.tables.values()) {
    const used = new Set<string>();
    for (const chain of table.chains.values()) {
      for (const rule of chain.rules) {
        const j = rule.args.indexOf('-j');
        const target = rule.args[j + 1]!;
        assert.ok(j >= 0 && (targets.has(target) || table.chains.has(target)), `${table.name}: ${renderRule(rule)}`);
        used.add(target);
        const m = rule.args.indexOf('--match-set');
        if (m >= 0) assert.ok(setNames.has(rule.args[m + 1]!), `unknown set in ${renderRule(rule)}`);
      }
    }
    for (const name of table.chains.keys()) {
      if (!isBuiltinChain(table.name, name)) assert.ok(used.has(name), `${table.name} ${name} is never jumped to`);
    }
  }
});
