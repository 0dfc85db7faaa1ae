/**
 * The self-healing scenario, for real (`kpsim demo --churn` and its test): kpsim's Kubernetes
 * API on loopback with one Service of three pods; the pods' processes (backend servers) with
 * readiness probes that write their EndpointSlice through the API; `kpsim agent` in userspace
 * mode watching the API and proxying the Service; HTTP load through the proxy. One pod is
 * killed under load: its endpoint turns not ready, the agent drains it, the load goes on over
 * the other two; the pod comes back and takes its share again.
 *
 * What it measures: requests that failed (the target is only those on the wire on the killed
 * pod when it died: a new connection to the dead pod is retried on another endpoint by the
 * proxy, and once the agent has synced none goes there; a request is known to be on the killed
 * pod's connection from an earlier answer on it, and a new connection whose first request was
 * on the wire at the kill is counted apart, its pod unknown), the time from the kill to the
 * endpoint being not ready in the API and to the agent's sync that took it out, and each pod's
 * share of the answers before, during and after. Phases are counted in requests, not seconds.
 */
import { createKubeApi, admissionOptions } from '../api/kube/index.js';
import { buildApiServer } from '../api/server.js';
import { ProxyAgent } from '../agent/agent.js';
import type { SyncEvent } from '../agent/proxier.js';
import { defaultProxyConfig } from '../model/proxy-config.js';
import type { Json } from '../model/fields.js';
import { Backends } from '../proxy/backends.js';
import { ReadinessProber } from './readiness-prober.js';
import { RequestLoop, UNANSWERED_AT_SNAPSHOT } from './request-loop.js';

export interface ChurnOptions {
  /** HTTP clients sending one request after another. Default 8. */
  readonly clients?: number;
  /** Requests per keep-alive connection before a client opens a new one. Default 20. */
  readonly requestsPerConnection?: number;
  /** Requests counted in each phase (before, during, after). Default 2000. */
  readonly requestsPerPhase?: number;
  /** Each pod answers after this long (requests are on the wire when it dies). Default 5 ms. */
  readonly backendDelayMs?: number;
  /** Readiness probe period and failure threshold. Defaults 200 ms and 1. */
  readonly probePeriodMs?: number;
  readonly failureThreshold?: number;
  /** The agent's minSyncPeriod in seconds (kube-proxy's default 1). */
  readonly minSyncPeriodSeconds?: number;
  readonly log?: (line: string) => void;
}

export interface ChurnShare {
  readonly requests: number;
  readonly failed: number;
  /** Answers per pod, as shares of the answered requests. */
  readonly share: Readonly<Record<string, number>>;
}

export interface ChurnReport {
  readonly schema: 'kpsim.churn/v1';
  readonly service: string;
  readonly pods: readonly { readonly pod: string; readonly endpoint: string }[];
  readonly killed: { readonly pod: string; readonly endpoint: string };
  readonly load: { readonly clients: number; readonly requestsPerConnection: number; readonly backendDelayMs: number };
  readonly probe: { readonly periodMs: number; readonly failureThreshold: number };
  readonly minSyncPeriodSeconds: number;
  readonly requests: {
    readonly total: number;
    readonly failed: number;
    /** Failures on connections that had been answered by the killed pod (the only ones expected). */
    readonly failedOnKilledPodConnections: number;
    /**
     * Failures of requests that were on the wire at the kill on connections that had not
     * answered yet (new connections): which pod they reached is unknown, and may be the killed
     * one; at most inFlightUnattributed.
     */
    readonly failedUnattributedInFlight: number;
    /** Failures on connections to the other pods or on new connections opened after the kill (the target: 0). */
    readonly failedElsewhere: number;
    /** Failures among requests started after the kill (on idle keep-alive connections to the killed pod, reset by its death). */
    readonly failedAfterKill: number;
    /** Requests on the wire at the kill, on connections to the killed pod. */
    readonly inFlightOnKilledPod: number;
    /** Requests on the wire at the kill on connections that had not answered yet (any pod). */
    readonly inFlightUnattributed: number;
    /** Connections open on the killed pod when it died (each holds at most one request). */
    readonly killedPodConnections: number;
  };
  /** ms, wall time. */
  readonly timings: { readonly killToNotReadyMs: number; readonly killToRulesUpdatedMs: number; readonly restoreToRulesUpdatedMs: number };
  /**
   * before the kill; outage: from the kill to the agent's sync; during: the pod out of the
   * rules; recovery: from its return to the sync that put it back; after.
   */
  readonly phases: { readonly before: ChurnShare; readonly outage: ChurnShare; readonly during: ChurnShare; readonly recovery: ChurnShare; readonly after: ChurnShare };
}

const NAMESPACE = 'default';
const SERVICE = 'web';
const SLICE = 'web-churn';
const NODE = 'churn-node';
const CLUSTER_IP = '10.96.0.80';
const POD_IPS = ['10.244.1.1', '10.244.1.2', '10.244.1.3'];
const TARGET_PORT = 8080;

function seedObjects(): { file: string; doc: Json }[] {
  const docs: Json[] = [
    { apiVersion: 'v1', kind: 'Node', metadata: { name: NODE }, status: { addresses: [{ type: 'InternalIP', address: '192.168.0.2' }] } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: SERVICE, namespace: NAMESPACE }, spec: { clusterIP: CLUSTER_IP, clusterIPs: [CLUSTER_IP], selector: { app: SERVICE }, ports: [{ name: 'http', port: 80, targetPort: TARGET_PORT, protocol: 'TCP' }] } },
    {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: { name: SLICE, namespace: NAMESPACE, labels: { 'kubernetes.io/service-name': SERVICE } },
      addressType: 'IPv4',
      endpoints: POD_IPS.map((ip, i) => ({ addresses: [ip], conditions: { ready: true, serving: true, terminating: false }, nodeName: NODE, targetRef: { kind: 'Pod', namespace: NAMESPACE, name: `${SERVICE}-${i}` } })),
      ports: [{ name: 'http', port: TARGET_PORT, protocol: 'TCP' }],
    },
  ];
  return docs.map((doc) => ({ file: 'churn', doc }));
}

function shareOf(loop: RequestLoop, phase: string, podOf: Map<string, string>): ChurnShare {
  const counts = loop.counts(phase);
  const answered = counts.requests - counts.failed;
  const share: Record<string, number> = {};
  for (const pod of podOf.values()) share[pod] = 0;
  for (const [endpoint, n] of counts.byEndpoint) share[podOf.get(endpoint) ?? endpoint] = answered > 0 ? n / answered : 0;
  return { requests: counts.requests, failed: counts.failed, share };
}

/** The first sync whose userspace payload has a line matching `pattern`. */
function syncWith(events: SyncEvent[], waiters: ((e: SyncEvent) => void)[], pattern: RegExp): Promise<SyncEvent> {
  const matches = (e: SyncEvent): boolean => e.ok && e.payload.some((a) => pattern.test(a.text()));
  const done = events.find(matches);
  if (done !== undefined) return Promise.resolve(done);
  return new Promise((resolve) => {
    const waiter = (e: SyncEvent): void => {
      if (!matches(e)) return;
      waiters.splice(waiters.indexOf(waiter), 1);
      resolve(e);
    };
    waiters.push(waiter);
  });
}

export async function runChurn(options: ChurnOptions = {}): Promise<ChurnReport> {
  const clients = options.clients ?? 8;
  const requestsPerConnection = options.requestsPerConnection ?? 20;
  const perPhase = options.requestsPerPhase ?? 2000;
  const backendDelayMs = options.backendDelayMs ?? 5;
  const periodMs = options.probePeriodMs ?? 200;
  const failureThreshold = options.failureThreshold ?? 1;
  const minSyncPeriodSeconds = options.minSyncPeriodSeconds ?? 1;
  const log = options.log ?? (() => {});
  const cleanups: (() => Promise<void>)[] = [];
  try {
    // The API server.
    const api = createKubeApi({ admission: admissionOptions() });
    api.store.seed(seedObjects());
    const app = buildApiServer({ currentCluster: () => api.store.cluster(), kube: api.options });
    await app.listen({ port: 0, host: '127.0.0.1' });
    cleanups.unshift(async () => {
      api.hub.stop();
      await app.close();
    });
    const address = app.server.address();
    const apiUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    log(`API server on ${apiUrl}: Service ${NAMESPACE}/${SERVICE} (${CLUSTER_IP}:80) with pods ${POD_IPS.map((ip, i) => `${SERVICE}-${i} ${ip}`).join(', ')}`);

    // The pods: one backend each, on loopback.
    const backends = new Backends({ delayMs: backendDelayMs, ports: 'ephemeral' });
    cleanups.unshift(() => backends.close());
    const endpoints = POD_IPS.map((ip) => `${ip}:${TARGET_PORT}`);
    const podOf = new Map(endpoints.map((endpoint, i) => [endpoint, `${SERVICE}-${i}`]));
    await backends.start(POD_IPS.map((ip, i) => ({
      endpoint: endpoints[i]!, ip, port: TARGET_PORT, family: 4 as const, podName: `${SERVICE}-${i}`, loopback: { address: `127.1.0.${i + 1}`, port: 0 }, spns: [`${NAMESPACE}/${SERVICE}:http`], protocols: ['TCP'],
    })));

    // Their readiness probes, writing the EndpointSlice through the API.
    const readiness: { ip: string; ready: boolean; at: number }[] = [];
    const prober = new ReadinessProber({
      apiUrl, namespace: NAMESPACE, sliceName: SLICE, periodMs, failureThreshold,
      pods: POD_IPS.map((ip, i) => ({ ip, address: () => backends.address(endpoints[i]!) })),
      onChange: (ip, ready, written) => {
        readiness.push({ ip, ready, at: performance.now() });
        log(`readiness probe: ${podOf.get(`${ip}:${TARGET_PORT}`)} ${ready ? 'ready' : 'not ready'}${written ? ', EndpointSlice updated' : ', the API refused the update'}`);
      },
    });
    prober.start();
    cleanups.unshift(() => prober.stop());

    // The agent in userspace mode, proxying the Service to the pods.
    const events: SyncEvent[] = [];
    const waiters: ((e: SyncEvent) => void)[] = [];
    const config = defaultProxyConfig();
    config.syncPeriods.iptables = { syncPeriodSeconds: 30, minSyncPeriodSeconds };
    const agent = await ProxyAgent.start({
      mode: 'userspace',
      source: { server: apiUrl },
      nodeName: NODE,
      config,
      metricsBindAddress: false,
      healthzBindAddress: false,
      processMetrics: false,
      modeOptions: { userspace: { ephemeralPorts: true, backendAddress: (endpoint) => backends.address(endpoint) } },
      log: (line) => log(`agent: ${line}`),
      onSync: (e) => {
        events.push(e);
        for (const w of [...waiters]) w(e);
      },
    });
    cleanups.unshift(() => agent.stop());
    const proxy = (await agent.userspaceProxy())!;
    const listener = proxy.map.lookup({ address: CLUSTER_IP, port: 80 });
    if (listener === undefined) throw new Error(`the agent serves no listener for ${CLUSTER_IP}:80`);
    log(`agent: ClusterIP ${CLUSTER_IP}:80 -> ${listener.loopback.address}:${listener.loopback.port}`);

    // Load, phase by phase.
    const loop = new RequestLoop({
      host: listener.loopback.address, port: listener.loopback.port, clients, requestsPerConnection, maxRequests: perPhase * 6 + 10_000,
      onFailed: (f) => log(`request ${f.request} (phase ${f.phase}, request ${f.requestOnConnection} on its connection) failed: ${f.error} on a connection to ${f.on || 'nothing yet (new)'}`),
    });
    loop.phase = 'before';
    loop.start();
    cleanups.unshift(() => loop.stop());
    await loop.finished('before', perPhase);

    const victim = endpoints[1]!;
    const inFlight = loop.inFlight();
    const killedPodConnections = backends.backend(victim)?.stats().activeConnections ?? 0;
    const killedAt = performance.now();
    loop.phase = 'outage';
    log(`killing ${podOf.get(victim)} (${victim}) with ${inFlight.byEndpoint.get(victim) ?? 0} requests on the wire on its connections`);
    await backends.kill(victim);
    const removed = await syncWith(events, waiters, new RegExp(`^- endpoint .*: ${victim.replace(/\./g, '\\.')}`, 'm'));
    const rulesUpdatedAt = performance.now();
    loop.phase = 'during';
    log(`agent: ${victim} out of the listener ${(rulesUpdatedAt - killedAt).toFixed(0)} ms after the kill (sync #${removed.seq})`);
    await loop.finished('during', perPhase);

    await backends.restore(victim);
    const restoredAt = performance.now();
    loop.phase = 'recovery';
    log(`${podOf.get(victim)} is back`);
    const added = await syncWith(events.slice(events.indexOf(removed) + 1), waiters, new RegExp(`^\\+ endpoint .*: ${victim.replace(/\./g, '\\.')}`, 'm'));
    const readdedAt = performance.now();
    loop.phase = 'after';
    log(`agent: ${victim} back in the listener (sync #${added.seq})`);
    await loop.finished('after', perPhase);
    await loop.stop();

    const notReady = readiness.find((r) => r.ip === POD_IPS[1] && !r.ready && r.at >= killedAt);
    const all = loop.phases.map((p) => loop.counts(p));
    const failedAfterKill = ['outage', 'during', 'recovery', 'after'].reduce((n, p) => n + loop.counts(p).failed, 0);
    return {
      schema: 'kpsim.churn/v1',
      service: `${NAMESPACE}/${SERVICE}`,
      pods: endpoints.map((endpoint) => ({ pod: podOf.get(endpoint)!, endpoint })),
      killed: { pod: podOf.get(victim)!, endpoint: victim },
      load: { clients, requestsPerConnection, backendDelayMs },
      probe: { periodMs, failureThreshold },
      minSyncPeriodSeconds,
      requests: {
        total: all.reduce((n, c) => n + c.requests, 0),
        failed: all.reduce((n, c) => n + c.failed, 0),
        failedOnKilledPodConnections: all.reduce((n, c) => n + (c.failedOn.get(victim) ?? 0), 0),
        failedUnattributedInFlight: all.reduce((n, c) => n + (c.failedOn.get(UNANSWERED_AT_SNAPSHOT) ?? 0), 0),
        failedElsewhere: all.reduce((n, c) => n + c.failed - (c.failedOn.get(victim) ?? 0) - (c.failedOn.get(UNANSWERED_AT_SNAPSHOT) ?? 0), 0),
        failedAfterKill,
        inFlightOnKilledPod: inFlight.byEndpoint.get(victim) ?? 0,
        inFlightUnattributed: inFlight.unknown,
        killedPodConnections,
      },
      timings: {
        killToNotReadyMs: notReady !== undefined ? notReady.at - killedAt : NaN,
        killToRulesUpdatedMs: rulesUpdatedAt - killedAt,
        restoreToRulesUpdatedMs: readdedAt - restoredAt,
      },
      phases: {
        before: shareOf(loop, 'before', podOf),
        outage: shareOf(loop, 'outage', podOf),
        during: shareOf(loop, 'during', podOf),
        recovery: shareOf(loop, 'recovery', podOf),
        after: shareOf(loop, 'after', podOf),
      },
    };
  } finally {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
  }
}

function percent(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

export function formatChurnReport(r: ChurnReport): string {
  const pods = r.pods.map((p) => p.pod);
  const row = (name: string, s: ChurnShare): string => `  ${name.padEnd(9)}${String(s.requests).padStart(9)}${String(s.failed).padStart(8)}  ${pods.map((p) => percent(s.share[p] ?? 0).padStart(8)).join('')}`;
  const q = r.requests;
  const lines = [
    `Self-healing under load: ${r.service}, pods ${r.pods.map((p) => `${p.pod} (${p.endpoint})`).join(', ')}`,
    `  load: ${r.load.clients} clients on keep-alive connections (a new one every ${r.load.requestsPerConnection} requests), pods answer in ${r.load.backendDelayMs} ms; readiness probe every ${r.probe.periodMs} ms, failure threshold ${r.probe.failureThreshold}; agent minSyncPeriod ${r.minSyncPeriodSeconds} s`,
    `  killed ${r.killed.pod} (${r.killed.endpoint}) under load, then brought it back`,
    '',
    `  requests: ${q.total}, failed ${q.failed}: ${q.failedOnKilledPodConnections} on the killed pod's connections, ${q.failedUnattributedInFlight} on new connections on the wire at the kill (pod unknown), ${q.failedElsewhere} elsewhere (target: only those on the killed pod, 0 elsewhere)`,
    `    at the kill the pod had ${q.killedPodConnections} connections open; on the wire: ${q.inFlightOnKilledPod} on the killed pod's connections, ${q.inFlightUnattributed} on connections not yet answered; ${q.failedAfterKill} of the failed requests started after the kill (reusing an idle connection to the killed pod)`,
    `  kill -> endpoint not ready in the API: ${r.timings.killToNotReadyMs.toFixed(0)} ms; kill -> agent's rules updated: ${r.timings.killToRulesUpdatedMs.toFixed(0)} ms; back -> rules updated: ${r.timings.restoreToRulesUpdatedMs.toFixed(0)} ms`,
    '',
    `  ${'phase'.padEnd(9)}${'requests'.padStart(9)}${'failed'.padStart(8)}  ${pods.map((p) => p.padStart(8)).join('')}`,
    row('before', r.phases.before),
    row('outage', r.phases.outage),
    row('during', r.phases.during),
    row('recovery', r.phases.recovery),
    row('after', r.phases.after),
    '  (outage: from the kill to the agent\'s sync; recovery: from the pod\'s return to the sync that put it back)',
  ];
  return `${lines.join('\n')}\n`;
}
