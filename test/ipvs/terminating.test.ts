/**
 * Ready and terminating endpoints, Cluster and Local traffic policies, ClusterIP and
 * LoadBalancer virtual servers: the real servers one kube-proxy sync writes. syncEndpoint adds
 * the endpoints CategorizeEndpoints selects (ready ones; serving-terminating ones only when no
 * endpoint of that policy's set is ready; for a node-local server the local ones, else the
 * cluster ones, kubernetes#97081), each at weight 1, and nothing else: a weight-0 "draining"
 * dest exists only for a real server the kernel already had (graceful_termination.go), which
 * one sync from the objects cannot have. The expectations below follow from those rules, case
 * by case; the weights must all be 1.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileIpvs } from '../../src/ipvs/compile.js';
import { destAddr } from '../../src/ipvs/table.js';
import { type EndpointManifest, ep, fixtureState, makeService, makeSlice, tcpPort } from '../helpers/cluster-builders.js';

const READY = { ready: true, serving: true, terminating: false };
const SERVING_TERMINATING = { ready: false, serving: true, terminating: true };
const TERMINATING = { ready: false, serving: false, terminating: true };
const NOT_READY = { ready: false, serving: false, terminating: false };

// Local endpoints are on kube-proxy's fixture node (test-node), remote ones on node-b.
const local = (ip: string, conditions: EndpointManifest['conditions']): EndpointManifest => ep(ip, 'test-node', conditions);
const remote = (ip: string, conditions: EndpointManifest['conditions']): EndpointManifest => ep(ip, 'node-b', conditions);

const endpointSets: Record<string, EndpointManifest[]> = {
  // Ready endpoints here and elsewhere, plus terminating and not-ready ones.
  mixed: [
    local('10.180.0.1', READY), local('10.180.0.2', SERVING_TERMINATING), local('10.180.0.3', TERMINATING),
    remote('10.180.1.1', READY), remote('10.180.1.2', SERVING_TERMINATING), remote('10.180.1.3', NOT_READY),
  ],
  // No endpoint is ready anywhere: serving-terminating ones take over.
  rollout: [local('10.180.0.2', SERVING_TERMINATING), local('10.180.0.3', TERMINATING), remote('10.180.1.2', SERVING_TERMINATING)],
  // This node has only a serving-terminating endpoint; another node has a ready one.
  localDraining: [local('10.180.0.2', SERVING_TERMINATING), remote('10.180.1.1', READY)],
  // Nothing on this node.
  remoteOnly: [remote('10.180.1.1', READY), remote('10.180.1.2', SERVING_TERMINATING)],
  // Nothing usable anywhere.
  unusable: [local('10.180.0.3', TERMINATING), remote('10.180.1.3', NOT_READY)],
};

interface Case {
  endpoints: keyof typeof endpointSets;
  externalTrafficPolicy: 'Cluster' | 'Local';
  internalTrafficPolicy?: 'Local';
  /** Real servers of the ClusterIP and of the LoadBalancer virtual server, sorted. */
  clusterIP: string[];
  loadBalancer: string[];
}

const cases: Case[] = [
  { endpoints: 'mixed', externalTrafficPolicy: 'Cluster', clusterIP: ['10.180.0.1:80', '10.180.1.1:80'], loadBalancer: ['10.180.0.1:80', '10.180.1.1:80'] },
  { endpoints: 'mixed', externalTrafficPolicy: 'Local', clusterIP: ['10.180.0.1:80', '10.180.1.1:80'], loadBalancer: ['10.180.0.1:80'] },
  { endpoints: 'mixed', externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Local', clusterIP: ['10.180.0.1:80'], loadBalancer: ['10.180.0.1:80', '10.180.1.1:80'] },
  { endpoints: 'rollout', externalTrafficPolicy: 'Cluster', clusterIP: ['10.180.0.2:80', '10.180.1.2:80'], loadBalancer: ['10.180.0.2:80', '10.180.1.2:80'] },
  { endpoints: 'rollout', externalTrafficPolicy: 'Local', clusterIP: ['10.180.0.2:80', '10.180.1.2:80'], loadBalancer: ['10.180.0.2:80'] },
  { endpoints: 'rollout', externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Local', clusterIP: ['10.180.0.2:80'], loadBalancer: ['10.180.0.2:80', '10.180.1.2:80'] },
  { endpoints: 'localDraining', externalTrafficPolicy: 'Cluster', clusterIP: ['10.180.1.1:80'], loadBalancer: ['10.180.1.1:80'] },
  // The local set falls back to the local serving-terminating endpoint, while the cluster set has a ready one.
  { endpoints: 'localDraining', externalTrafficPolicy: 'Local', clusterIP: ['10.180.1.1:80'], loadBalancer: ['10.180.0.2:80'] },
  { endpoints: 'localDraining', externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Local', clusterIP: ['10.180.0.2:80'], loadBalancer: ['10.180.1.1:80'] },
  { endpoints: 'remoteOnly', externalTrafficPolicy: 'Cluster', clusterIP: ['10.180.1.1:80'], loadBalancer: ['10.180.1.1:80'] },
  // No local endpoint: the node-local server takes the cluster endpoints (#97081).
  { endpoints: 'remoteOnly', externalTrafficPolicy: 'Local', clusterIP: ['10.180.1.1:80'], loadBalancer: ['10.180.1.1:80'] },
  { endpoints: 'remoteOnly', externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Local', clusterIP: ['10.180.1.1:80'], loadBalancer: ['10.180.1.1:80'] },
  { endpoints: 'unusable', externalTrafficPolicy: 'Cluster', clusterIP: [], loadBalancer: [] },
  { endpoints: 'unusable', externalTrafficPolicy: 'Local', clusterIP: [], loadBalancer: [] },
];

for (const c of cases) {
  const policies = `externalTrafficPolicy ${c.externalTrafficPolicy}${c.internalTrafficPolicy ? `, internalTrafficPolicy ${c.internalTrafficPolicy}` : ''}`;
  test(`one sync, ${c.endpoints} endpoints, ${policies}: ClusterIP ${c.clusterIP.join(' ') || 'none'}; LoadBalancer ${c.loadBalancer.join(' ') || 'none'}`, () => {
    const state = fixtureState([
      makeService('ns1', 'svc1', (s) => {
        s.spec.type = 'LoadBalancer';
        s.spec.clusterIP = '172.30.0.41';
        s.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })];
        s.spec.externalTrafficPolicy = c.externalTrafficPolicy;
        if (c.internalTrafficPolicy) s.spec.internalTrafficPolicy = c.internalTrafficPolicy;
        if (c.externalTrafficPolicy === 'Local') s.spec.healthCheckNodePort = 30000;
        s.status.loadBalancer.ingress = [{ ip: '1.2.3.4' }];
      }),
      makeSlice('ns1', 'svc1', 1, (eps) => { eps.endpoints = endpointSets[c.endpoints]!; eps.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }]; }),
    ]);
    const compiled = compileIpvs(state);
    const dests = (address: string, port: number) => {
      const vs = compiled.table.services.find((v) => v.address === address && v.port === port);
      assert.ok(vs, `no virtual server ${address}:${port}`);
      return vs.dests;
    };
    const shown = (address: string, port: number) => dests(address, port).map(destAddr).sort();
    assert.deepEqual({ clusterIP: shown('172.30.0.41', 80), loadBalancer: shown('1.2.3.4', 80) }, { clusterIP: c.clusterIP, loadBalancer: c.loadBalancer });
    // NodePort virtual servers follow the same (external) policy as the load balancer's.
    assert.deepEqual(shown('192.168.0.2', 3001), c.loadBalancer, 'NodePort 192.168.0.2:3001');
    for (const vs of compiled.table.services) {
      for (const d of vs.dests) assert.equal(d.weight, 1, `${destAddr(d)} in ${vs.address}:${vs.port} has weight ${d.weight}: one sync writes no draining dest`);
    }
  });
}

test('over time (gracefulTermination): the same table with the terminating endpoints kube-proxy would still be draining, at weight 0', () => {
  const state = fixtureState([
    makeService('ns1', 'svc1', (s) => {
      s.spec.type = 'LoadBalancer'; s.spec.clusterIP = '172.30.0.41'; s.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })];
      s.spec.externalTrafficPolicy = 'Local'; s.spec.healthCheckNodePort = 30000; s.status.loadBalancer.ingress = [{ ip: '1.2.3.4' }];
    }),
    makeSlice('ns1', 'svc1', 1, (eps) => { eps.endpoints = endpointSets['mixed']!; eps.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }]; }),
  ]);
  const weights = (address: string) => compileIpvs(state, { gracefulTermination: true }).table.services
    .find((v) => v.address === address)!.dests.map((d) => `${destAddr(d)}:w${d.weight}`).sort();
  // The ClusterIP server drains every terminating endpoint; the node-local LoadBalancer one only the local ones.
  assert.deepEqual(weights('172.30.0.41'), ['10.180.0.1:80:w1', '10.180.0.2:80:w0', '10.180.0.3:80:w0', '10.180.1.1:80:w1', '10.180.1.2:80:w0']);
  assert.deepEqual(weights('1.2.3.4'), ['10.180.0.1:80:w1', '10.180.0.2:80:w0', '10.180.0.3:80:w0']);
});
