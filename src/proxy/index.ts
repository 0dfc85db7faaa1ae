/**
 * The userspace proxy's public surface: the address map, the proxy (on one thread, or on
 * several workers), the backend pods, and startCluster, which runs the last two together.
 */
export {
  AddressMap, entryKey, planAddressMap, virtualKinds,
  type BackendEntry, type BoundPort, type HostPort, type LookupQuery, type PlanOptions, type VirtualEntry, type VirtualKind,
} from './address-map.js';
export {
  Backend, Backends, responseBody, startBackends,
  type BackendOptions, type BackendStats, type FaultSchedule,
} from './backends.js';
export { startCluster, userBackendProblem, type ClusterStats, type RunningCluster, type StartClusterOptions } from './cluster.js';
export { chooseEndpoints, type ListenerVerdict } from './endpoint-choice.js';
export {
  DEFAULT_DIAL_TIMEOUTS_MS, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_UDP_IDLE_TIMEOUT_MS, UserspaceProxy, startProxy, statesOf,
  type CloseOptions, type ProxyInput, type ProxyOptions, type RunningProxy, type UpdateResult,
} from './proxy.js';
export type { EndpointErrorKind, EndpointErrors, EndpointStats, ListenerStats, ProxyStats, WorkerStats } from './stats.js';
export { MAX_WORKERS, WorkerProxy, startWorkerProxy } from './workers.js';
export { udpReply, dnsTxtStrings, type PodIdentity } from './udp-reply.js';
