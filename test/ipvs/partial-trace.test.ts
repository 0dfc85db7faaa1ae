/**
 * A node compiled with only some service ports (a cluster-wide trace's entry node) is traced
 * without kept walks: its answers must be those of the same table traced with them, for every
 * kind of packet, and the whole compile keeps its walks (it answers many packets).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClusterView } from '../../src/cluster/cluster-view.js';
import { type IpvsCompiled, compileIpvs } from '../../src/ipvs/compile.js';
import { traceIpvs } from '../../src/trace/ipvs.js';
import type { Packet, TraceOptions } from '../../src/trace/types.js';
import type { ServicePortInfo } from '../../src/tracker/types.js';
import { generatedCluster } from '../helpers/generated-cluster.js';

const cluster = generatedCluster({ nodes: 6, pods: 240, services: 60, seed: 3 });
const view = new ClusterView(cluster);

test('partial is set by onlyServicePorts only', () => {
  const node = view.resolve(cluster.nodes[0]!.name);
  const state = view.statesOf(node).find((s) => s.family === 4)!;
  assert.equal(compileIpvs(state).partial, undefined, 'a whole compile is not partial');
  assert.equal(compileIpvs(state, { onlyServicePorts: () => true }).partial, true, 'a compile with onlyServicePorts is partial');
});

interface Case {
  readonly what: string;
  readonly packet: (info: ServicePortInfo, nodeIP: string, podIP: string) => Packet | undefined;
  readonly opts?: TraceOptions;
}

const CASES: readonly Case[] = [
  { what: 'outside to the ClusterIP', packet: (i) => ({ proto: 'tcp', src: '203.0.113.9', dst: i.clusterIP, dport: i.port }) },
  { what: 'pod to the ClusterIP', packet: (i, _n, pod) => ({ proto: i.protocol === 'UDP' ? 'udp' : 'tcp', src: pod, dst: i.clusterIP, dport: i.port }) },
  { what: 'node to the ClusterIP', packet: (i, node) => ({ proto: 'tcp', src: node, dst: i.clusterIP, dport: i.port }) },
  { what: 'outside to the ClusterIP, seeded', packet: (i) => ({ proto: 'tcp', src: '203.0.113.9', dst: i.clusterIP, dport: i.port, sport: 40000 }), opts: { seed: 5 } },
  { what: 'outside to the load balancer', packet: (i) => (i.loadBalancerVIPs[0] === undefined ? undefined : { proto: 'tcp', src: '203.0.113.9', dst: i.loadBalancerVIPs[0], dport: i.port }) },
  { what: 'outside to the node port', packet: (i, node) => (i.nodePort === 0 ? undefined : { proto: 'tcp', src: '203.0.113.9', dst: node, dport: i.nodePort }) },
  { what: 'node to its own node port', packet: (i, node) => (i.nodePort === 0 ? undefined : { proto: 'tcp', src: node, dst: node, dport: i.nodePort }) },
  { what: 'outside to the health check port', packet: (i, node) => (i.healthCheckNodePort === 0 ? undefined : { proto: 'tcp', src: '203.0.113.9', dst: node, dport: i.healthCheckNodePort }) },
];

test('a partial compile traces as the same table with kept walks', () => {
  let compared = 0;
  for (const nodeObject of cluster.nodes.slice(0, 3)) {
    const node = view.resolve(nodeObject.name);
    const state = view.statesOf(node).find((s) => s.family === 4)!;
    const nodeIP = state.nodeIPs[0]!;
    const podIP = state.servicePorts.flatMap((sp) => sp.endpoints.filter((e) => e.isLocal)).map((e) => e.ip)[0] ?? '10.244.99.9';
    for (const sp of state.servicePorts) {
      const info = sp.info;
      for (const c of CASES) {
        const packet = c.packet(info, nodeIP, podIP);
        if (packet === undefined) continue;
        const only = (other: ServicePortInfo): boolean => other === info;
        const partial = compileIpvs(state, { onlyServicePorts: only });
        assert.equal(partial.partial, true);
        // The same table, traced as a whole compile is: with kept walks (asked twice: the second answer is a kept one).
        const kept: IpvsCompiled = { ...partial, partial: undefined };
        const first = traceIpvs(kept, packet, c.opts);
        const again = traceIpvs(kept, packet, c.opts);
        const got = traceIpvs(partial, packet, c.opts);
        const where = `${node.name} ${info.spn}: ${c.what} (${packet.src} -> ${packet.dst}:${packet.dport})`;
        assert.deepEqual(got, first, `${where}: the partial compile's answer differs from the kept-walk tracer's`);
        assert.deepEqual(got, again, `${where}: the partial compile's answer differs from a kept walk's`);
        compared++;
      }
    }
  }
  assert.ok(compared > 100, `only ${compared} packets compared`);
});
