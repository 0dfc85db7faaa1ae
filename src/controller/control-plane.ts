/**
 * The control plane between the manifests people keep and what kube-proxy reads: with
 * --allocate, the workload controllers, the scheduler and the kubelets turn workloads into
 * running pods (workload/run.ts); always, the EndpointSlice controller turns the pods into
 * EndpointSlices for every Service with a selector that has none given. Pure: the cluster in,
 * a new cluster out, or one error listing every problem.
 */
import { aggregateErrors } from '../errors.js';
import { matchesMap, matchesSelector } from '../model/label-selector.js';
import type { Cluster, Warning } from '../model/types.js';
import { DEFAULT_CLUSTER_CIDR } from '../workload/node-pool.js';
import { runWorkloadControllers } from '../workload/run.js';
import { PodIndex, deriveEndpointSlices } from './endpoint-slice-controller.js';

export interface ControlPlaneOptions {
  /** Run the workload controllers, the scheduler and the kubelets (--allocate). */
  allocate?: boolean;
  /** Nodes to create when the input has none (--nodes; default 3). */
  nodeCount?: number;
  /** The cluster CIDRs pod CIDRs come from (--cluster-cidr); else kube-proxy's clusterCIDR, else 10.244.0.0/16. */
  clusterCIDRs?: readonly string[];
  /** kube-controller-manager --max-endpoints-per-slice (default 100). */
  maxEndpointsPerSlice?: number;
  /** Mixed into the hashes that stand for the API server's random name suffixes (default 0). */
  seed?: number;
}

export function runControlPlane(cluster: Cluster, options: ControlPlaneOptions = {}): Cluster {
  const warnings: Warning[] = [...cluster.warnings];
  let { nodes, config } = cluster;
  let pods = cluster.pods ?? [];
  let workloads = cluster.workloads ?? [];
  /** The pods by label, when they are the input's: both the warnings and the EndpointSlice controller select from them. */
  let podIndex: PodIndex | undefined;
  if (options.allocate) {
    const clusterCIDRs = options.clusterCIDRs ?? (config.clusterCIDRs.length > 0 ? config.clusterCIDRs : [DEFAULT_CLUSTER_CIDR]);
    const result = runWorkloadControllers({ nodes, pods, workloads }, { clusterCIDRs, ...(options.nodeCount !== undefined ? { nodeCount: options.nodeCount } : {}), ...(options.seed !== undefined ? { seed: options.seed } : {}) });
    if (result.problems.length > 0) throw aggregateErrors(result.problems);
    ({ nodes, pods, workloads } = result);
    warnings.push(...result.warnings);
    if (result.createdNodes && config.clusterCIDRs.length === 0) {
      // A cluster kpsim laid out has kube-proxy configured for its pod network, as kubeadm and
      // kind do. Given Nodes describe a cluster whose kube-proxy the input configures: left alone.
      config = { ...config, clusterCIDRs: [...clusterCIDRs] };
      warnings.push({ message: `kube-proxy's clusterCIDR is not set: taken as ${clusterCIDRs.join(',')}, where --allocate gave the pods their addresses` });
    }
  } else {
    podIndex = new PodIndex(pods);
    warnings.push(...workloadsWithoutPods(cluster, podIndex));
  }
  const derived = deriveEndpointSlices(
    { services: cluster.services, pods, nodes, givenSlices: cluster.endpointSlices, ...(podIndex !== undefined ? { podIndex } : {}) },
    {
      preferSameTrafficDistribution: config.featureGates['PreferSameTrafficDistribution'] ?? true,
      ...(options.maxEndpointsPerSlice !== undefined ? { maxEndpointsPerSlice: options.maxEndpointsPerSlice } : {}),
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
    },
  );
  warnings.push(...derived.warnings);
  return { ...cluster, nodes, config, pods, workloads, endpointSlices: [...cluster.endpointSlices, ...derived.slices], warnings };
}

/**
 * Without --allocate nothing runs the workload controllers: say so for each workload that has no
 * pods in the input, unless the input already holds EndpointSlices of a Service selecting its
 * pods (a folder of manifests written beside its endpoints: the slices are what kube-proxy reads).
 */
function workloadsWithoutPods(cluster: Cluster, index: PodIndex): Warning[] {
  const slicedServices = new Set(cluster.endpointSlices.map((s) => `${s.namespace}/${s.serviceName}`));
  const endpointsGiven = (namespace: string, podLabels: Readonly<Record<string, string>>): boolean =>
    cluster.services.some((svc) => svc.namespace === namespace && svc.selector !== undefined
      && slicedServices.has(`${svc.namespace}/${svc.name}`) && matchesMap(svc.selector, podLabels));
  return (cluster.workloads ?? [])
    // Scaled to zero, a workload has no pods in a running cluster either.
    .filter((w) => w.kind === 'DaemonSet' || w.replicas > 0)
    .filter((w) => !index.select(w.namespace, w.selector.matchLabels).some((p) => matchesSelector(w.selector, p.labels)))
    .filter((w) => !endpointsGiven(w.namespace, w.template.labels))
    .map((w) => ({
      file: w.origin.file,
      object: w.origin.object,
      message: 'has no pods in the input, and makes none without --allocate (which runs the workload controllers, the scheduler and the kubelets as a cluster would)',
    }));
}
