/**
 * Decoded objects → one validated Cluster. The checks here span objects: duplicates, address
 * ranges, references between slices and services. Every problem is collected; the caller gets
 * either a whole Cluster or one error listing all of them (nothing half-loaded).
 */
import { KpsimError, aggregateErrors, type Where } from '../errors.js';
import { type Cidr, cidrContains, ipFamily, parseCIDR } from '../util/ip.js';
import { type AllocateOptions, DEFAULT_NODE_PORT_RANGE, type NodePortRange, allocateServiceFields } from './allocate.js';
import { defaultProxyConfig } from './proxy-config.js';
import type { Cluster, EndpointSlice, Node, Origin, Pod, ProxyConfig, Service, Warning, Workload } from './types.js';

export interface ClusterInput {
  services: Service[];
  endpointSlices: EndpointSlice[];
  nodes: Node[];
  configs: ProxyConfig[];
  /** From ServiceCIDR objects. */
  serviceCIDRs?: string[];
  warnings: Warning[];
  pods?: Pod[];
  workloads?: Workload[];
}

export interface AssembleOptions {
  /** Allocate what the API server would (--allocate). */
  allocate?: boolean;
  /** --service-cluster-ip-range: one CIDR per family. ClusterIPs outside are an error when given. */
  serviceCIDRs?: readonly string[];
  /** --service-node-port-range; node ports outside it are a warning (clusters configure it). */
  nodePortRange?: NodePortRange;
}

export function assembleCluster(input: ClusterInput, options: AssembleOptions = {}): Cluster {
  const problems: KpsimError[] = [];
  const warnings: Warning[] = [...input.warnings];
  if (input.configs.length > 1) {
    const files = input.configs.map((c) => c.origin?.file ?? '?').join(', ');
    problems.push(new KpsimError('KPSIM_ERR_MODEL_DUPLICATE', `more than one KubeProxyConfiguration (${files}); give one`, {}));
  }
  const config = input.configs[0] ?? defaultProxyConfig();
  const services = input.services;
  checkDuplicateNames(services, problems);
  checkDuplicateNames(input.endpointSlices, problems);
  checkDuplicateNames(input.nodes, problems);
  checkDuplicateNames(input.pods ?? [], problems);
  for (const kind of new Set((input.workloads ?? []).map((w) => w.kind))) checkDuplicateNames((input.workloads ?? []).filter((w) => w.kind === kind), problems);
  checkFamilies(services, problems);

  const nodePortRange = options.nodePortRange ?? DEFAULT_NODE_PORT_RANGE;
  if (options.allocate) {
    const allocateOptions: AllocateOptions = { serviceCIDRs: options.serviceCIDRs ?? ['10.96.0.0/12'], nodePortRange };
    problems.push(...allocateServiceFields(services, allocateOptions));
  }
  if (options.serviceCIDRs !== undefined) checkServiceCIDRs(services, options.serviceCIDRs, problems);
  checkDuplicateClusterIPs(services, problems);
  checkNodePorts(services, nodePortRange, problems, warnings);
  warnMissingFields(services, warnings);
  warnUnknownServices(input.endpointSlices, services, warnings);

  if (problems.length > 0) throw aggregateErrors(problems);
  const serviceCIDRs = [...new Set(input.serviceCIDRs ?? [])];
  return { services, endpointSlices: input.endpointSlices, nodes: input.nodes, config, ...(serviceCIDRs.length > 0 ? { serviceCIDRs } : {}), warnings, pods: input.pods ?? [], workloads: input.workloads ?? [] };
}

function whereOf(obj: { origin: { file: string; object: string } }, path?: string): Where {
  return { file: obj.origin.file, object: obj.origin.object, ...(path !== undefined ? { path } : {}) };
}

interface Named {
  readonly origin: Origin;
  readonly name: string;
  readonly namespace?: string;
}

function checkDuplicateNames(objects: readonly Named[], problems: KpsimError[]): void {
  // Two objects are the same one when their "namespace/name" texts are equal. The text split at
  // its first "/" is looked up in two levels, so the usual object (a namespace without "/") makes
  // no text: 150,000 pods made and hashed one each.
  const seen = new Map<string | undefined, Map<string, Named>>();
  for (const obj of objects) {
    let outer: string | undefined = obj.namespace;
    let inner = obj.name;
    if (outer === undefined || outer.includes('/')) {
      const key = outer !== undefined ? `${outer}/${inner}` : inner;
      const slash = key.indexOf('/');
      outer = slash < 0 ? undefined : key.slice(0, slash);
      inner = slash < 0 ? key : key.slice(slash + 1);
    }
    let inNamespace = seen.get(outer);
    if (inNamespace === undefined) {
      inNamespace = new Map();
      seen.set(outer, inNamespace);
    }
    const first = inNamespace.get(inner);
    if (first) {
      problems.push(new KpsimError('KPSIM_ERR_MODEL_DUPLICATE', `is defined twice (also in ${first.origin.file})`, whereOf(obj, 'metadata.name')));
    } else {
      inNamespace.set(inner, obj);
    }
  }
}

function checkFamilies(services: readonly Service[], problems: KpsimError[]): void {
  for (const svc of services) {
    svc.clusterIPs.forEach((ip, i) => {
      const declared = svc.ipFamilies[i];
      const actual = ipFamily(ip) === 4 ? 'IPv4' : 'IPv6';
      if (declared !== undefined && declared !== actual) {
        problems.push(new KpsimError('KPSIM_ERR_MODEL_FAMILY_MISMATCH', `${ip} is ${actual} but spec.ipFamilies[${i}] is ${declared}`, whereOf(svc, `spec.clusterIPs[${i}]`)));
      }
    });
  }
}

function checkServiceCIDRs(services: readonly Service[], cidrTexts: readonly string[], problems: KpsimError[]): void {
  const cidrs = cidrTexts.map((c) => parseCIDR(c)).filter((c): c is Cidr => c !== undefined);
  for (const svc of services) {
    svc.clusterIPs.forEach((ip, i) => {
      const range = cidrs.find((c) => c.family === ipFamily(ip));
      if (range && !cidrContains(range, ip)) {
        problems.push(new KpsimError('KPSIM_ERR_MODEL_BAD_IP', `${ip} is outside the service CIDR ${range.text} (--service-cluster-ip-range)`, whereOf(svc, `spec.clusterIPs[${i}]`)));
      }
    });
  }
}

function checkDuplicateClusterIPs(services: readonly Service[], problems: KpsimError[]): void {
  const owners = new Map<string, Service>();
  for (const svc of services) {
    svc.clusterIPs.forEach((ip, i) => {
      const owner = owners.get(ip);
      if (owner) {
        problems.push(new KpsimError('KPSIM_ERR_MODEL_DUPLICATE', `ClusterIP ${ip} is already used by ${owner.origin.object} (${owner.origin.file})`, whereOf(svc, `spec.clusterIPs[${i}]`)));
      } else {
        owners.set(ip, svc);
      }
    });
  }
}

function checkNodePorts(services: readonly Service[], range: NodePortRange, problems: KpsimError[], warnings: Warning[]): void {
  const owners = new Map<string, Service>();
  for (const svc of services) {
    svc.ports.forEach((p, i) => {
      if (p.nodePort === 0) return;
      const path = `spec.ports[${i}].nodePort`;
      const key = `${p.nodePort}/${p.protocol}`;
      const owner = owners.get(key);
      if (owner && owner !== svc) {
        problems.push(new KpsimError('KPSIM_ERR_MODEL_DUPLICATE', `node port ${key} is already used by ${owner.origin.object} (${owner.origin.file})`, whereOf(svc, path)));
      }
      owners.set(key, svc);
      if (p.nodePort < range.min || p.nodePort > range.max) {
        warnings.push({ ...whereOf(svc, path), message: `${p.nodePort} is outside the node-port range ${range.min}-${range.max} (kube-proxy still writes its rules)` });
      }
    });
  }
}

/** Fields kube-proxy needs but a hand-written manifest may lack: say what follows from it. */
function warnMissingFields(services: readonly Service[], warnings: Warning[]): void {
  for (const svc of services) {
    if (svc.type === 'ExternalName') continue;
    if (!svc.headless && svc.clusterIPs.length === 0) {
      warnings.push({ ...whereOf(svc, 'spec.clusterIP'), message: 'not set, so kube-proxy writes no rules for this service (--allocate assigns one as the API server would)' });
    }
    if (svc.type === 'NodePort' || svc.type === 'LoadBalancer') {
      svc.ports.forEach((p, i) => {
        if (p.nodePort === 0) warnings.push({ ...whereOf(svc, `spec.ports[${i}].nodePort`), message: 'not set, so no NodePort rules for this port (--allocate assigns one)' });
      });
    }
    if (svc.type === 'LoadBalancer' && svc.externalTrafficPolicy === 'Local' && svc.healthCheckNodePort === 0) {
      warnings.push({ ...whereOf(svc, 'spec.healthCheckNodePort'), message: 'not set, so no health check node port rule (--allocate assigns one)' });
    }
  }
}

function warnUnknownServices(slices: readonly EndpointSlice[], services: readonly Service[], warnings: Warning[]): void {
  const known = new Set(services.map((s) => `${s.namespace}/${s.name}`));
  for (const slice of slices) {
    if (slice.serviceName === '' || known.has(`${slice.namespace}/${slice.serviceName}`)) continue;
    warnings.push({
      ...whereOf(slice, 'metadata.labels[kubernetes.io/service-name]'),
      message: `service ${slice.namespace}/${slice.serviceName} does not exist, so no rule uses these endpoints`,
    });
  }
}
