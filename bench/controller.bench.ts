/**
 * Controller benchmark: 150,000 pods from 10,000 Deployments over 5,000 nodes, into
 * EndpointSlices (target: under 2 s, printed, not asserted).
 *
 *   npm run bench:controller [-- --quick]
 *
 * The cluster is generated in-process from a seed: 10,000 Deployments of 15 replicas spread over
 * 20 namespaces, a Service in front of each (a named targetPort, resolved per pod), 5,000 Nodes
 * with pod CIDRs, given as stored. Timed, each as the median of several runs: the workload
 * controllers, scheduler and kubelets (Deployments -> ReplicaSets -> scheduled pods with
 * addresses), then the EndpointSlice controller (pods -> slices). Decoding the manifests is
 * timed once, apart. The baseline, measured in the same run on the same slices: kube-proxy's
 * own view of them on one node (buildProxierState), the work every node does with what the
 * controller writes. CPU time is printed beside wall time (steadier on a shared machine).
 */
import { cpus, loadavg } from 'node:os';
import { deriveEndpointSlices } from '../src/controller/endpoint-slice-controller.js';
import { clusterFromManifests } from '../src/manifest/load.js';
import type { Cluster, EndpointSlice, Pod } from '../src/model/types.js';
import { buildProxierState, resolveNode } from '../src/tracker/proxier-state.js';
import { ipv4ToUint32, uint32ToIPv4 } from '../src/util/ip.js';
import { seededRng } from '../src/util/random.js';
import { runWorkloadControllers, type WorkloadControllerResult } from '../src/workload/run.js';
import { BENCH_SEED, type StepTimes, cpuMs, gc, machineLine, timeSteps } from './common.js';

const TARGET_SECONDS = 2;
const NAMESPACES = 20;
const CLUSTER_CIDR = '10.0.0.0/8';
/** ClusterIPs from 10.96.0.2 on (10.96.0.1 is default/kubernetes's). */
const SERVICE_BASE = ipv4ToUint32('10.96.0.0');

interface Shape {
  deployments: number;
  replicas: number;
  nodes: number;
}

/** Deployments, their Services and the Nodes, as manifests (JSON: quick to decode at this size). */
function manifests(shape: Shape): unknown[] {
  const rng = seededRng(BENCH_SEED);
  const items: unknown[] = [];
  for (let n = 0; n < shape.nodes; n++) {
    const zone = `zone-${n % 3}`;
    items.push({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: `node-${n}`, labels: { 'kubernetes.io/hostname': `node-${n}`, 'topology.kubernetes.io/zone': zone } },
      spec: { podCIDRs: [`10.${n >> 8}.${n & 255}.0/24`] },
      status: { addresses: [{ type: 'InternalIP', address: `172.16.${n >> 8}.${n & 255}` }] },
    });
  }
  for (let d = 0; d < shape.deployments; d++) {
    const namespace = `ns-${d % NAMESPACES}`;
    const app = `app-${d}`;
    const labels = { app, tier: rng() < 0.5 ? 'web' : 'backend' };
    items.push({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: app, namespace },
      spec: {
        replicas: shape.replicas,
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: { containers: [{ name: 'app', image: `registry.example/${app}:1`, ports: [{ name: 'http', containerPort: 8080 }] }] } },
      },
    });
    items.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: app, namespace },
      spec: { clusterIP: uint32ToIPv4(SERVICE_BASE + 2 + d), selector: labels, ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 'http' }] },
    });
  }
  return items;
}

interface Figures {
  decodeMs: number;
  workloads: StepTimes;
  slices: StepTimes;
  baseline: StepTimes;
  pods: number;
  sliceCount: number;
  endpoints: number;
}

function measure(shape: Shape, runs: number): Figures {
  const text = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests(shape) });
  const t0 = performance.now();
  // Decoded as given (no --allocate): the controllers are timed below on their own.
  const given: Cluster = clusterFromManifests([{ file: 'bench.json', text }], { clusterCIDR: CLUSTER_CIDR });
  const decodeMs = performance.now() - t0;
  let result: WorkloadControllerResult | undefined;
  let slices: EndpointSlice[] = [];
  const [workloads, derive, baseline] = timeSteps(runs, [
    () => {
      result = runWorkloadControllers({ nodes: given.nodes, pods: [], workloads: given.workloads ?? [] }, { clusterCIDRs: [CLUSTER_CIDR] });
    },
    () => {
      slices = deriveEndpointSlices({ services: given.services, pods: result!.pods, nodes: result!.nodes }).slices;
    },
    () => {
      const cluster: Cluster = { ...given, nodes: result!.nodes, pods: result!.pods, endpointSlices: slices };
      buildProxierState(cluster, resolveNode(cluster), 4);
    },
  ]) as [StepTimes, StepTimes, StepTimes];
  const pods: Pod[] = result!.pods;
  return {
    decodeMs,
    workloads,
    slices: derive,
    baseline,
    pods: pods.filter((p) => p.podIPs.length > 0).length,
    sliceCount: slices.length,
    endpoints: slices.reduce((n, s) => n + s.endpoints.length, 0),
  };
}

function ms(t: StepTimes): string {
  return `${t.wallMs.toFixed(0).padStart(5)} ms (cpu ${t.cpuMs.toFixed(0).padStart(5)})`;
}

function main(): void {
  const quick = process.argv.includes('--quick');
  const shape: Shape = quick ? { deployments: 1000, replicas: 15, nodes: 500 } : { deployments: 10000, replicas: 15, nodes: 5000 };
  const runs = quick ? 3 : 5;
  console.log(`controller bench: ${shape.deployments} Deployments x ${shape.replicas} replicas over ${shape.nodes} nodes, ${NAMESPACES} namespaces, seed ${BENCH_SEED}, median of ${runs} runs`);
  console.log(`${machineLine()}${gc ? '' : ' (no --expose-gc)'}`);
  const c0 = cpuMs();
  const f = measure(shape, runs);
  console.log(`decode manifests (once, not in the target): ${f.decodeMs.toFixed(0)} ms`);
  console.log(`workload controllers, scheduler, kubelets: ${ms(f.workloads)}  -> ${f.pods} running pods`);
  console.log(`EndpointSlice controller:                  ${ms(f.slices)}  -> ${f.sliceCount} slices, ${f.endpoints} endpoints`);
  console.log(`baseline, kube-proxy's view on one node:   ${ms(f.baseline)}`);
  const total = f.workloads.wallMs + f.slices.wallMs;
  const totalCpu = f.workloads.cpuMs + f.slices.cpuMs;
  console.log(`ratio to the baseline: controllers ${(total / Math.max(f.baseline.wallMs, 0.001)).toFixed(1)}x (wall), ${(totalCpu / Math.max(f.baseline.cpuMs, 0.001)).toFixed(1)}x (cpu); EndpointSlice controller alone ${(f.slices.wallMs / Math.max(f.baseline.wallMs, 0.001)).toFixed(1)}x`);
  const [load] = loadavg();
  if (load! > cpus().length) console.log(`note: load average ${load!.toFixed(1)} on ${cpus().length} CPUs: wall time includes waiting for a CPU; cpu time is the work done`);
  if (!quick) {
    console.log(`target: ${shape.deployments * shape.replicas} pods from ${shape.deployments} Deployments over ${shape.nodes} nodes into EndpointSlices in < ${TARGET_SECONDS} s: ${(total / 1000).toFixed(2)} s wall, ${(totalCpu / 1000).toFixed(2)} s cpu (${total / 1000 < TARGET_SECONDS ? 'met' : 'NOT met'})`);
  }
  console.log(`whole run: ${((cpuMs() - c0) / 1000).toFixed(1)} s cpu`);
}

main();
