/**
 * The generated cluster's objects as the API server stores them (what `kubectl get -o json`
 * prints): metadata with uid, resourceVersion and creationTimestamp, the defaults the API server
 * fills in (ipFamilyPolicy, internalTrafficPolicy, sessionAffinity, allocateLoadBalancerNodePorts,
 * ...), and the status the controllers write (pod IPs and conditions, load-balancer ingress).
 */
import type { Protocol } from '../model/types.js';

/** A JSON object as the API server would serve it. */
export type ApiObject = Readonly<Record<string, unknown>>;

export interface ObjectMinter {
  /** A generateName suffix of n characters. */
  suffix(n: number): string;
  /** A pod-template-hash. */
  templateHash(): string;
  uid(): string;
  resourceVersion(): string;
  timestamp(): string;
}

export interface ServicePortSpec {
  readonly name: string;
  readonly protocol: Protocol;
  readonly port: number;
  readonly targetPort: number;
  readonly nodePort?: number;
}

export interface GeneratedService {
  readonly namespace: string;
  readonly name: string;
  readonly type: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
  /** Primary first; absent for headless and ExternalName services. */
  readonly clusterIPs?: readonly string[];
  readonly headless?: boolean;
  readonly externalName?: string;
  readonly ports: readonly ServicePortSpec[];
  readonly externalTrafficPolicy?: 'Local';
  readonly internalTrafficPolicy?: 'Local';
  readonly healthCheckNodePort?: number;
  readonly lbIngress?: readonly string[];
  readonly loadBalancerSourceRanges?: readonly string[];
  readonly externalIPs?: readonly string[];
  readonly sessionAffinity?: boolean;
  readonly trafficDistribution?: 'PreferClose';
  /** The workload whose pods it selects (label app=<workload>). */
  readonly workload: string;
}

export interface GeneratedPod {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly node: number;
  readonly nodeName: string;
  readonly zone: string;
  readonly ipv4: string;
  readonly ipv6: string;
  readonly hostIPv4: string;
  readonly hostIPv6: string;
  readonly state: 'ready' | 'not-ready' | 'terminating';
  readonly ownerKind: 'ReplicaSet' | 'DaemonSet';
  readonly ownerName: string;
  readonly app: string;
  readonly templateHash: string;
  readonly containerPorts: readonly ServicePortSpec[];
}

export interface EndpointEntry {
  readonly pod: GeneratedPod;
  readonly address: string;
  /** The zone hint the EndpointSlice controller writes for trafficDistribution PreferClose. */
  readonly hintZone: string | undefined;
}

function metadata(mint: ObjectMinter, name: string, namespace: string | undefined, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...(extra['annotations'] !== undefined ? { annotations: extra['annotations'] } : {}),
    creationTimestamp: mint.timestamp(),
    ...(extra['deletionGracePeriodSeconds'] !== undefined ? { deletionGracePeriodSeconds: extra['deletionGracePeriodSeconds'] } : {}),
    ...(extra['deletionTimestamp'] !== undefined ? { deletionTimestamp: extra['deletionTimestamp'] } : {}),
    ...(extra['generateName'] !== undefined ? { generateName: extra['generateName'] } : {}),
    ...(extra['labels'] !== undefined ? { labels: extra['labels'] } : {}),
    name,
    ...(namespace !== undefined ? { namespace } : {}),
    ...(extra['ownerReferences'] !== undefined ? { ownerReferences: extra['ownerReferences'] } : {}),
    resourceVersion: mint.resourceVersion(),
    uid: mint.uid(),
  };
}

export function namespaceObject(mint: ObjectMinter, name: string): ApiObject {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: metadata(mint, name, undefined, { labels: { 'kubernetes.io/metadata.name': name } }),
    spec: { finalizers: ['kubernetes'] },
    status: { phase: 'Active' },
  };
}

export function nodeObject(mint: ObjectMinter, n: { name: string; zone: string; ipv4: string; ipv6: string; podCIDRs: string[]; pods: number }): ApiObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: metadata(mint, n.name, undefined, {
      annotations: { 'node.alpha.kubernetes.io/ttl': '0', 'volumes.kubernetes.io/controller-managed-attach-detach': 'true' },
      labels: {
        'beta.kubernetes.io/arch': 'amd64',
        'beta.kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/hostname': n.name,
        'kubernetes.io/os': 'linux',
        'node.kubernetes.io/instance-type': 'standard-8',
        'topology.kubernetes.io/region': 'region-1',
        'topology.kubernetes.io/zone': n.zone,
      },
    }),
    spec: { podCIDR: n.podCIDRs[0], podCIDRs: n.podCIDRs, providerID: `kpsim://region-1/${n.zone}/${n.name}` },
    status: {
      addresses: [
        { address: n.ipv4, type: 'InternalIP' },
        { address: n.ipv6, type: 'InternalIP' },
        { address: n.name, type: 'Hostname' },
      ],
      allocatable: { cpu: '7910m', 'ephemeral-storage': '95551679124', memory: '30574288Ki', pods: '110' },
      capacity: { cpu: '8', 'ephemeral-storage': '103681208Ki', memory: '32827600Ki', pods: '110' },
      conditions: [
        { lastHeartbeatTime: mint.timestamp(), lastTransitionTime: mint.timestamp(), message: 'kubelet is posting ready status', reason: 'KubeletReady', status: 'True', type: 'Ready' },
      ],
      nodeInfo: {
        architecture: 'amd64',
        containerRuntimeVersion: 'containerd://1.7.24',
        kernelVersion: '6.8.0-1021',
        kubeProxyVersion: 'v1.32.4',
        kubeletVersion: 'v1.32.4',
        operatingSystem: 'linux',
        osImage: 'Debian GNU/Linux 12 (bookworm)',
      },
    },
  };
}

function selectorOf(app: string): Record<string, string> {
  return { app };
}

export function serviceObject(mint: ObjectMinter, svc: GeneratedService): ApiObject {
  const spec: Record<string, unknown> = {};
  if (svc.type === 'LoadBalancer') spec['allocateLoadBalancerNodePorts'] = true;
  if (svc.type === 'ExternalName') {
    spec['externalName'] = svc.externalName;
    spec['ports'] = svc.ports.map(portSpec);
    spec['selector'] = selectorOf(svc.workload);
    spec['sessionAffinity'] = 'None';
    spec['type'] = 'ExternalName';
    return { apiVersion: 'v1', kind: 'Service', metadata: serviceMetadata(mint, svc), spec, status: { loadBalancer: {} } };
  }
  const clusterIPs = svc.headless ? ['None'] : [...svc.clusterIPs!];
  spec['clusterIP'] = clusterIPs[0];
  spec['clusterIPs'] = clusterIPs;
  if (svc.externalIPs !== undefined) spec['externalIPs'] = [...svc.externalIPs];
  if (svc.type === 'NodePort' || svc.type === 'LoadBalancer') spec['externalTrafficPolicy'] = svc.externalTrafficPolicy ?? 'Cluster';
  if (svc.healthCheckNodePort !== undefined) spec['healthCheckNodePort'] = svc.healthCheckNodePort;
  spec['internalTrafficPolicy'] = svc.internalTrafficPolicy ?? 'Cluster';
  spec['ipFamilies'] = svc.headless ? ['IPv4'] : svc.clusterIPs!.map((ip) => (ip.includes(':') ? 'IPv6' : 'IPv4'));
  spec['ipFamilyPolicy'] = (svc.clusterIPs?.length ?? 1) === 2 ? 'PreferDualStack' : 'SingleStack';
  if (svc.loadBalancerSourceRanges !== undefined) spec['loadBalancerSourceRanges'] = [...svc.loadBalancerSourceRanges];
  spec['ports'] = svc.ports.map(portSpec);
  spec['selector'] = selectorOf(svc.workload);
  spec['sessionAffinity'] = svc.sessionAffinity ? 'ClientIP' : 'None';
  if (svc.sessionAffinity) spec['sessionAffinityConfig'] = { clientIP: { timeoutSeconds: 10800 } };
  if (svc.trafficDistribution !== undefined) spec['trafficDistribution'] = svc.trafficDistribution;
  spec['type'] = svc.type;
  const status = svc.lbIngress !== undefined ? { loadBalancer: { ingress: svc.lbIngress.map((ip) => ({ ip, ipMode: 'VIP' })) } } : { loadBalancer: {} };
  return { apiVersion: 'v1', kind: 'Service', metadata: serviceMetadata(mint, svc), spec, status };
}

function serviceMetadata(mint: ObjectMinter, svc: GeneratedService): Record<string, unknown> {
  return metadata(mint, svc.name, svc.namespace, { labels: { app: svc.workload } });
}

function portSpec(p: ServicePortSpec): Record<string, unknown> {
  return { name: p.name, ...(p.nodePort !== undefined && p.nodePort !== 0 ? { nodePort: p.nodePort } : {}), port: p.port, protocol: p.protocol, targetPort: p.targetPort };
}

export function endpointSliceObject(mint: ObjectMinter, svc: GeneratedService, family: 4 | 6, entries: readonly EndpointEntry[]): ApiObject {
  return {
    addressType: family === 4 ? 'IPv4' : 'IPv6',
    apiVersion: 'discovery.k8s.io/v1',
    endpoints: entries.map((e) => ({
      addresses: [e.address],
      conditions: {
        ready: e.pod.state === 'ready',
        serving: e.pod.state !== 'not-ready',
        terminating: e.pod.state === 'terminating',
      },
      ...(e.hintZone !== undefined ? { hints: { forZones: [{ name: e.hintZone }] } } : {}),
      nodeName: e.pod.nodeName,
      targetRef: { kind: 'Pod', name: e.pod.name, namespace: e.pod.namespace, uid: e.pod.uid },
      zone: e.pod.zone,
    })),
    kind: 'EndpointSlice',
    metadata: metadata(mint, `${svc.name}-${mint.suffix(5)}`, svc.namespace, {
      annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': mint.timestamp() },
      generateName: `${svc.name}-`,
      labels: {
        'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
        'kubernetes.io/service-name': svc.name,
        app: svc.workload,
      },
      ownerReferences: [{ apiVersion: 'v1', blockOwnerDeletion: true, controller: true, kind: 'Service', name: svc.name, uid: mint.uid() }],
    }),
    ports: svc.ports.map((p) => ({ name: p.name, port: p.targetPort, protocol: p.protocol })),
  };
}

function podTemplate(app: string, ports: readonly ServicePortSpec[], hash?: string): Record<string, unknown> {
  return {
    metadata: { labels: { app, ...(hash !== undefined ? { 'pod-template-hash': hash } : {}) } },
    spec: { containers: [containerSpec(app, ports)], dnsPolicy: 'ClusterFirst', restartPolicy: 'Always', schedulerName: 'default-scheduler', terminationGracePeriodSeconds: 30 },
  };
}

function containerSpec(app: string, ports: readonly ServicePortSpec[]): Record<string, unknown> {
  return {
    image: `registry.example.com/${app}:1.0`,
    name: 'main',
    ...(ports.length > 0 ? { ports: ports.map((p) => ({ containerPort: p.targetPort, name: p.name.slice(0, 15), protocol: p.protocol })) } : {}),
    resources: { requests: { cpu: '100m', memory: '128Mi' } },
  };
}

export function deploymentObject(mint: ObjectMinter, namespace: string, name: string, replicas: number, ports: readonly ServicePortSpec[]): ApiObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: metadata(mint, name, namespace, { labels: { app: name } }),
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      strategy: { rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' }, type: 'RollingUpdate' },
      template: podTemplate(name, ports),
    },
    status: { availableReplicas: replicas, readyReplicas: replicas, replicas, updatedReplicas: replicas },
  };
}

export function replicaSetObject(mint: ObjectMinter, namespace: string, name: string, deployment: string, hash: string, replicas: number, ports: readonly ServicePortSpec[]): ApiObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: metadata(mint, name, namespace, {
      labels: { app: deployment, 'pod-template-hash': hash },
      ownerReferences: [{ apiVersion: 'apps/v1', blockOwnerDeletion: true, controller: true, kind: 'Deployment', name: deployment, uid: mint.uid() }],
    }),
    // The Deployment's template with the pod-template-hash label, as the deployment controller writes it.
    spec: { replicas, selector: { matchLabels: { app: deployment, 'pod-template-hash': hash } }, template: podTemplate(deployment, ports, hash) },
    status: { replicas },
  };
}

export function daemonSetObject(mint: ObjectMinter, namespace: string, name: string, nodes: number, ports: readonly ServicePortSpec[]): ApiObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: metadata(mint, name, namespace, { labels: { app: name } }),
    spec: { selector: { matchLabels: { app: name } }, template: podTemplate(name, ports), updateStrategy: { rollingUpdate: { maxUnavailable: 1 }, type: 'RollingUpdate' } },
    status: { currentNumberScheduled: nodes, desiredNumberScheduled: nodes, numberAvailable: nodes, numberReady: nodes },
  };
}

export function podObject(mint: ObjectMinter, pod: GeneratedPod): ApiObject {
  const terminating = pod.state === 'terminating';
  const ready = pod.state === 'ready' ? 'True' : 'False';
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: metadata(mint, pod.name, pod.namespace, {
      ...(terminating ? { deletionGracePeriodSeconds: 30, deletionTimestamp: mint.timestamp() } : {}),
      generateName: pod.name.slice(0, pod.name.length - 5),
      labels: { app: pod.app, ...(pod.ownerKind === 'ReplicaSet' ? { 'pod-template-hash': pod.templateHash } : {}) },
      ownerReferences: [{ apiVersion: 'apps/v1', blockOwnerDeletion: true, controller: true, kind: pod.ownerKind, name: pod.ownerName, uid: mint.uid() }],
    }),
    spec: {
      containers: [containerSpec(pod.app, pod.containerPorts)],
      dnsPolicy: 'ClusterFirst',
      nodeName: pod.nodeName,
      restartPolicy: 'Always',
      schedulerName: 'default-scheduler',
      terminationGracePeriodSeconds: 30,
    },
    status: {
      conditions: [
        { lastTransitionTime: mint.timestamp(), status: 'True', type: 'PodScheduled' },
        { lastTransitionTime: mint.timestamp(), status: ready, type: 'Ready' },
      ],
      hostIP: pod.hostIPv4,
      hostIPs: [{ ip: pod.hostIPv4 }, { ip: pod.hostIPv6 }],
      phase: 'Running',
      podIP: pod.ipv4,
      podIPs: [{ ip: pod.ipv4 }, { ip: pod.ipv6 }],
      qosClass: 'Burstable',
    },
  };
}

export function proxyConfigObject(clusterCIDRs: readonly string[]): ApiObject {
  return {
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    clusterCIDR: clusterCIDRs.join(','),
    detectLocalMode: 'ClusterCIDR',
    mode: 'iptables',
  };
}
