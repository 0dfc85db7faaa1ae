/**
 * kpsim's JSON API (fastify): the cluster a server was started with, its compiled rules, and
 * packet traces — the same answers as the CLI, over HTTP. Manifests can also be posted with a
 * request, for a one-off compile or trace of another cluster.
 *
 *   GET  /v1/healthz
 *   GET  /v1/cluster                       node, families, service ports and their endpoints
 *   GET  /v1/rules?mode=&family=&format=   the mode's text (text/plain): what `kpsim compile` prints
 *   POST /v1/trace                         {proto, src, dst, dport, sport?, mode?, seed?, fromNode?, manifests?}
 *   POST /v1/trace/batch                   {flows: [...], mode?, manifests?} → one result per flow
 *   GET  /                                 the web page, with the routes only it uses (web.ts)
 *
 * Errors answer {code, message, file?, object?, path?}: 400 for bad input, 404 for an unknown
 * node, 409 for conflicting objects; a 500 is a bug.
 *
 * With `kube`, the same server also answers the Kubernetes API (src/api/kube/routes.ts), and
 * the routes above read its store's live cluster (`currentCluster`).
 */
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { requireBearerToken } from './auth.js';
import { type KubeApiOptions, kubeApiPlugin } from './kube/routes.js';
import { webPlugin } from './web.js';
import { KpsimError, isKpsimError } from '../errors.js';
import { clusterFromManifests, type ManifestText } from '../manifest/load.js';
import { ZONE_LABEL } from '../model/node.js';
import type { Cluster } from '../model/types.js';
import { proxierStatesFor } from '../node/compile-node.js';
import type { CompiledNode, OutputFormat, RulesMode } from '../node/mode-driver.js';
import { RULES_MODES, defaultRulesMode, modeDriver } from '../node/modes.js';
import type { NodeTracer } from '../node/trace-node.js';
import type { NodeSelection } from '../tracker/proxier-state.js';
import type { Packet, TraceOptions } from '../trace/types.js';

export interface ApiOptions {
  /** The cluster the server answers for (when requests carry no manifests). */
  cluster?: Cluster;
  /** The cluster as it is now, asked on every request (the Kubernetes API store's); wins over `cluster`. */
  currentCluster?: () => Cluster;
  /** Serve the Kubernetes API from this store and watch hub too. */
  kube?: KubeApiOptions;
  /** Every request but /version and health checks must carry `Authorization: Bearer <token>`. */
  token?: string;
  /** Serve HTTPS with this key and certificate (PEM). */
  https?: { key: string | Buffer; cert: string | Buffer };
  node?: NodeSelection;
  /** Allocate missing fields in posted manifests (--allocate). */
  allocate?: boolean;
}

type Mode = RulesMode;
const FORMATS: readonly OutputFormat[] = ['kube-proxy', 'canonical', 'stats', 'rate', 'ipsets', 'iptables'];

interface TraceBody {
  proto?: Packet['proto'];
  src: string;
  dst: string;
  dport: number;
  sport?: number;
  mode?: Mode;
  seed?: number;
  fromNode?: boolean;
  manifests?: ManifestText[];
  node?: string;
  nodeIPs?: string[];
}

interface BatchBody {
  flows: { proto?: Packet['proto']; src: string; dst: string; dport: number; sport?: number }[];
  mode?: Mode;
  seed?: number;
  manifests?: ManifestText[];
  node?: string;
  nodeIPs?: string[];
}

const manifestsSchema = {
  type: 'array',
  items: { type: 'object', required: ['file', 'text'], properties: { file: { type: 'string' }, text: { type: 'string' } }, additionalProperties: false },
} as const;
const flowProperties = {
  proto: { type: 'string', enum: ['tcp', 'udp', 'sctp'] },
  src: { type: 'string' },
  dst: { type: 'string' },
  dport: { type: 'integer', minimum: 1, maximum: 65535 },
  sport: { type: 'integer', minimum: 1, maximum: 65535 },
} as const;
const commonProperties = {
  mode: { type: 'string', enum: RULES_MODES },
  seed: { type: 'integer', minimum: 0 },
  manifests: manifestsSchema,
  node: { type: 'string' },
  nodeIPs: { type: 'array', items: { type: 'string' } },
} as const;

/** Compiled rules of one cluster, made on first use and kept. */
class CompiledCluster {
  private readonly compiledByMode = new Map<Mode, CompiledNode>();
  readonly view: ReturnType<typeof proxierStatesFor>;

  constructor(readonly cluster: Cluster, selection: NodeSelection) {
    this.view = proxierStatesFor(cluster, selection);
  }

  /** The mode a request leaves out: the cluster's configured one, as the CLI takes it. */
  get defaultMode(): Mode {
    return defaultRulesMode(this.cluster.config);
  }

  compiled(mode: Mode): CompiledNode {
    let compiled = this.compiledByMode.get(mode);
    if (!compiled) this.compiledByMode.set(mode, (compiled = modeDriver(mode).compile(this.view.node, this.view.states)));
    return compiled;
  }

  tracer(mode: Mode = this.defaultMode): NodeTracer {
    return modeDriver(mode).tracer(this.compiled(mode));
  }
}

export function buildApiServer(options: ApiOptions = {}): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024, ...(options.https ? { https: options.https } : {}) }) as unknown as FastifyInstance;
  if (options.token !== undefined) requireBearerToken(app, options.token);
  if (options.kube) void app.register(kubeApiPlugin, options.kube);
  let servedFrom: Cluster | undefined;
  const servedByNode = new Map<string, CompiledCluster>();
  /**
   * The served cluster from the server's node (or another node's point of view, when a request
   * names one), compiled anew when the live cluster has changed since the last request.
   */
  const servedCluster = (node?: string): CompiledCluster | undefined => {
    const cluster = options.currentCluster?.() ?? options.cluster;
    if (!cluster) return undefined;
    if (servedFrom !== cluster) {
      servedFrom = cluster;
      servedByNode.clear();
    }
    const key = node ?? '';
    let served = servedByNode.get(key);
    if (!served) {
      served = new CompiledCluster(cluster, node === undefined ? options.node ?? {} : { node });
      servedByNode.set(key, served);
    }
    return served;
  };

  /** The cluster a request is about: its posted manifests, else the server's own. */
  const clusterFor = (body: { manifests?: ManifestText[]; node?: string; nodeIPs?: string[] }): CompiledCluster => {
    if (body.manifests) {
      const cluster = clusterFromManifests(body.manifests, { allocate: options.allocate ?? false });
      return new CompiledCluster(cluster, { ...(body.node !== undefined ? { node: body.node } : {}), ...(body.nodeIPs ? { nodeIPs: body.nodeIPs } : {}) });
    }
    const current = servedCluster(body.node === '' ? undefined : body.node);
    if (!current) throw new KpsimError('KPSIM_ERR_API_BAD_REQUEST', 'this server has no cluster: post manifests with the request', { path: 'manifests' });
    return current;
  };

  app.setErrorHandler((error: FastifyError | KpsimError, _request, reply) => {
    if (isKpsimError(error)) return reply.status(statusOf(error)).send(error.toJSON());
    if (error.validation) {
      const detail = error.validation.map((v) => `${v.instancePath || 'body'} ${v.message ?? 'is not valid'}`).join('; ');
      return reply.status(400).send({ code: 'KPSIM_ERR_API_BAD_REQUEST', message: detail });
    }
    if (typeof error.statusCode === 'number' && error.statusCode < 500) {
      return reply.status(error.statusCode).send({ code: 'KPSIM_ERR_API_BAD_REQUEST', message: error.message });
    }
    return reply.status(500).send({ code: 'KPSIM_ERR_INTERNAL', message: `internal error: ${error.message}` });
  });

  app.get('/v1/healthz', async () => ({ ok: true }));
  webPlugin(app, {
    served: (node) => {
      const c = clusterFor(node !== undefined ? { node } : {});
      return { defaultMode: c.defaultMode, view: { ...c.view, cluster: c.cluster }, compiled: (mode) => c.compiled(mode), tracer: (mode) => c.tracer(mode) };
    },
    ...(options.kube ? { store: options.kube.store } : {}),
  });

  app.get('/v1/cluster', async () => {
    const c = clusterFor({});
    return {
      node: { name: c.view.node.name, ips: c.view.node.ips },
      families: c.view.states.map((s) => s.family),
      defaultMode: c.defaultMode,
      ...(options.kube ? { resourceVersion: options.kube.store.resourceVersion } : {}),
      servicePorts: c.view.states.flatMap((s) =>
        s.servicePorts.map((sp) => {
          const svc = sp.info.service;
          return {
            family: s.family,
            name: sp.info.spn,
            namespace: svc.namespace,
            service: svc.name,
            portName: sp.info.svcPortName.port,
            type: svc.type,
            protocol: sp.info.protocol,
            clusterIP: sp.info.clusterIP,
            port: sp.info.port,
            nodePort: sp.info.nodePort,
            externalIPs: sp.info.externalIPs,
            loadBalancerVIPs: sp.info.loadBalancerVIPs,
            loadBalancerSourceRanges: sp.info.loadBalancerSourceRanges,
            externalTrafficPolicy: svc.externalTrafficPolicy,
            internalTrafficPolicy: svc.internalTrafficPolicy,
            sessionAffinity: svc.sessionAffinity,
            sessionAffinityTimeoutSeconds: sp.info.sessionAffinityTimeoutSeconds,
            healthCheckNodePort: sp.info.healthCheckNodePort,
            endpoints: sp.endpoints.map((e) => ({
              endpoint: e.endpoint, ready: e.ready, serving: e.serving, terminating: e.terminating, local: e.isLocal,
              ...(e.nodeName !== undefined ? { node: e.nodeName } : {}),
              ...(e.zone !== undefined ? { zone: e.zone } : {}),
              ...(e.podName !== undefined ? { pod: e.podName } : {}),
            })),
            reachable: sp.categorized.allReachableEndpoints.map((e) => e.endpoint),
          };
        }),
      ),
      nodes: c.cluster.nodes.map((n) => ({
        name: n.name,
        addresses: n.addresses.map((a) => `${a.type} ${a.address}`),
        podCIDRs: n.podCIDRs,
        ...(n.labels[ZONE_LABEL] !== undefined ? { zone: n.labels[ZONE_LABEL] } : {}),
        ready: n.ready !== false,
      })),
      warnings: c.cluster.warnings,
    };
  });

  app.get<{ Querystring: { mode?: Mode; family?: '4' | '6'; format?: OutputFormat } }>(
    '/v1/rules',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: { mode: { type: 'string', enum: RULES_MODES }, family: { type: 'string', enum: ['4', '6'] }, format: { type: 'string', enum: FORMATS } },
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const c = clusterFor({});
      const mode = request.query.mode ?? c.defaultMode;
      const driver = modeDriver(mode);
      const format = request.query.format ?? 'kube-proxy';
      if (!driver.formats.includes(format)) {
        throw new KpsimError('KPSIM_ERR_API_BAD_REQUEST', `format ${format} does not apply to ${mode} mode (${driver.formats.join(', ')})`, { path: 'format' });
      }
      const family = request.query.family === undefined ? undefined : Number(request.query.family);
      const states = c.view.states.filter((s) => family === undefined || s.family === family);
      if (states.length === 0) throw new KpsimError('KPSIM_ERR_API_BAD_REQUEST', `the cluster has no IPv${family} services or node addresses`, { path: 'family' });
      reply.type('text/plain; charset=utf-8');
      const compiled = family === undefined ? c.compiled(mode) : driver.compile(c.view.node, states);
      return driver.render(compiled, format);
    },
  );

  app.post<{ Body: TraceBody }>(
    '/v1/trace',
    { schema: { body: { type: 'object', required: ['src', 'dst', 'dport'], properties: { ...flowProperties, ...commonProperties, fromNode: { type: 'boolean' } }, additionalProperties: false } } },
    async (request) => {
      const body = request.body;
      const tracer = clusterFor(body).tracer(body.mode);
      return tracer.trace(packetOf(body), traceOptionsOf(body));
    },
  );

  app.post<{ Body: BatchBody }>(
    '/v1/trace/batch',
    {
      schema: {
        body: {
          type: 'object',
          required: ['flows'],
          properties: { flows: { type: 'array', items: { type: 'object', required: ['src', 'dst', 'dport'], properties: flowProperties, additionalProperties: false } }, ...commonProperties },
          additionalProperties: false,
        },
      },
    },
    async (request) => {
      const body = request.body;
      const tracer = clusterFor(body).tracer(body.mode);
      const options = traceOptionsOf(body);
      return body.flows.map((flow) => {
        try {
          return tracer.trace(packetOf(flow), options);
        } catch (e) {
          if (isKpsimError(e)) return { error: e.toJSON() };
          throw e;
        }
      });
    },
  );

  return app;
}

function packetOf(flow: { proto?: Packet['proto']; src: string; dst: string; dport: number; sport?: number }): Packet {
  return { proto: flow.proto ?? 'tcp', src: flow.src, dst: flow.dst, dport: flow.dport, ...(flow.sport !== undefined ? { sport: flow.sport } : {}) };
}

function traceOptionsOf(body: { seed?: number; fromNode?: boolean }): TraceOptions {
  return { ...(body.seed !== undefined ? { seed: body.seed } : {}), ...(body.fromNode !== undefined ? { fromNode: body.fromNode } : {}) };
}

/** HTTP status for an error about the request's input. */
export function statusOf(error: KpsimError): number {
  if (error.code === 'KPSIM_ERR_CONFIG_UNKNOWN_NODE') return 404;
  if (error.code === 'KPSIM_ERR_MODEL_DUPLICATE') return 409;
  if (error.code === 'KPSIM_ERR_MODEL_INVALID' && error.problems.every((p) => p.code === 'KPSIM_ERR_MODEL_DUPLICATE')) return 409;
  return 400;
}
