/**
 * The web page of `kpsim serve` and the routes only it needs, beside the JSON API:
 *
 *   GET /                                  the page (dist/web/, bundled by `npm run build`)
 *   GET /web/:file                         its script, style sheet and source map
 *   GET /v1/events                         server-sent events: `change` whenever the live cluster changes
 *   GET /v1/graph?mode=&family=            the rules as a graph: its roots (see rules-graph.ts)
 *   GET /v1/graph/chain?mode=&family=&id=  one chain: its rules and the chains it reaches
 *   GET /v1/graph/search?mode=&family=&q=  chains by name or comment, each with its path from a root
 *   GET /v1/ipvs?q=&limit=                 the IPVS table as JSON, filtered
 *   GET /v1/compare/stream?target=&...     `kpsim compare` as server-sent events: progress, each row, the report
 *
 * The page is loopback's by default, as the server is; with --token-file the page's requests
 * carry no token, so it is for loopback use.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { KubeStore } from './kube/store.js';
import { type GraphEdge, type RulesGraph, childrenOf, graphsOf, pathTo, searchChains, summaryOf } from './rules-graph.js';
import { KpsimError, isKpsimError } from '../errors.js';
import { isSchedulerName } from '../ipvs/schedulers/registry.js';
import { schedulerNames } from '../ipvs/schedulers/types.js';
import { destAddr, isPersistent, serviceAddr } from '../ipvs/table.js';
import { type CompareView, runCompare } from '../load/compare.js';
import { parseTargetFlag } from '../load/target.js';
import type { CompiledNode, RulesMode } from '../node/mode-driver.js';
import { RULES_MODES } from '../node/modes.js';
import { type CompiledIpvsNode, kernelTableOf } from '../node/modes/ipvs.js';
import type { NodeTracer } from '../node/trace-context.js';

/** What the page's routes read of the served cluster. */
export interface ServedRules {
  readonly defaultMode: RulesMode;
  readonly view: CompareView;
  compiled(mode: RulesMode): CompiledNode;
  tracer(mode: RulesMode): NodeTracer;
}

export interface WebOptions {
  /** The served cluster from its node's point of view, or from the named node's. */
  served: (node?: string) => ServedRules;
  store?: KubeStore;
  /** The folder holding index.html and app.js; found beside the code by default. */
  webRoot?: string;
}

const STATIC_TYPES: Readonly<Record<string, string>> = {
  'app.js': 'text/javascript; charset=utf-8',
  'app.js.map': 'application/json',
  'app.css': 'text/css; charset=utf-8',
};

/**
 * dist/web/ from wherever this module runs: dist/src/api/ (tsc), dist/cli/ (the bundle), or
 * src/api/ under tsx (then the last build's dist/web/).
 */
export function defaultWebRoot(): string | undefined {
  for (const relative of ['../web/', '../../web/', '../../dist/web/']) {
    const dir = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(`${dir}app.js`) && existsSync(`${dir}index.html`)) return dir;
  }
  return undefined;
}

const graphCache = new WeakMap<CompiledNode, RulesGraph[]>();

function graphsFor(compiled: CompiledNode): RulesGraph[] {
  let graphs = graphCache.get(compiled);
  if (!graphs) graphCache.set(compiled, (graphs = graphsOf(compiled)));
  return graphs;
}

/**
 * Once the page has the cluster, the server prepares what the page asks next (the default mode's
 * rules, their graph, the tracer's chain index), one step per turn of the event loop so that
 * requests in between are answered. On a 10k-service cluster that is seconds of work a reader
 * would otherwise wait for on the first click.
 */
function warmUp(served: ServedRules, warmed: WeakSet<object>): void {
  if (warmed.has(served.view.cluster)) return;
  warmed.add(served.view.cluster);
  const mode = served.defaultMode;
  const steps = [
    () => graphsFor(served.compiled(mode)),
    () => (served.tracer(mode) as NodeTracer & { warm?: () => void }).warm?.(),
  ];
  const next = (): void => {
    const step = steps.shift();
    if (!step) return;
    try {
      step();
    } catch {
      return; // The request that needs it will say what is wrong.
    }
    setImmediate(next);
  };
  setImmediate(next);
}

function badRequest(message: string, path: string): KpsimError {
  return new KpsimError('KPSIM_ERR_API_BAD_REQUEST', message, { path });
}

export function webPlugin(app: FastifyInstance, options: WebOptions): void {
  const root = options.webRoot ?? defaultWebRoot();
  const read = (file: string): Buffer => {
    if (root === undefined) throw new KpsimError('KPSIM_ERR_API_BAD_REQUEST', 'the web page is not built: run npm run build', { path: file });
    return readFileSync(`${root}${file}`);
  };

  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(read('index.html')));
  app.get<{ Params: { file: string } }>('/web/:file', async (request, reply) => {
    const type = STATIC_TYPES[request.params.file];
    if (type === undefined) return reply.status(404).send({ code: 'KPSIM_ERR_API_BAD_REQUEST', message: `no such file: ${request.params.file}` });
    return reply.type(type).send(read(request.params.file));
  });

  const warmed = new WeakSet<object>();
  app.addHook('onResponse', async (request, reply) => {
    if (request.url === '/v1/cluster' && reply.statusCode === 200) {
      try {
        warmUp(options.served(), warmed);
      } catch {
        // Nothing to prepare: the next request says why.
      }
    }
  });

  app.get('/v1/events', (request, reply) => {
    openEventStream(reply);
    const send = sender(reply);
    send('hello', { resourceVersion: options.store?.resourceVersion ?? 0 });
    // One event per burst of changes (a kubectl apply of many objects), not one per object.
    let pending: NodeJS.Timeout | undefined;
    const unsubscribe = options.store?.onChange(() => {
      pending ??= setTimeout(() => {
        pending = undefined;
        send('change', { resourceVersion: options.store?.resourceVersion ?? 0 });
      }, 50);
    });
    const keepAlive = setInterval(() => send('', undefined), 15_000);
    request.raw.on('close', () => {
      unsubscribe?.();
      clearInterval(keepAlive);
      if (pending) clearTimeout(pending);
    });
  });

  const graphFor = (query: { mode?: string; family?: string; node?: string }): { graph: RulesGraph; graphs: RulesGraph[]; mode: RulesMode } => {
    const served = options.served(query.node === undefined || query.node === '' ? undefined : query.node);
    const mode = query.mode === undefined || query.mode === '' ? served.defaultMode : parseMode(query.mode);
    const compiled = served.compiled(mode);
    const graphs = graphsFor(compiled);
    const family = query.family === undefined || query.family === '' ? graphs[0]?.family : Number(query.family);
    const graph = graphs.find((g) => g.family === family);
    if (!graph) throw badRequest(`node ${compiled.node.name} has no IPv${family} rules in ${mode} mode`, 'family');
    return { graph, graphs, mode };
  };

  type GraphQuery = { mode?: string; family?: string; node?: string; id?: string; q?: string; limit?: string };
  app.get<{ Querystring: GraphQuery }>('/v1/graph', async (request) => {
    const { graph, graphs, mode } = graphFor(request.query);
    return {
      mode,
      family: graph.family,
      families: graphs.map((g) => g.family),
      chains: graph.chains.size,
      rules: graph.ruleCount,
      roots: graph.roots.map((id) => summaryOf(graph.chains.get(id)!)),
    };
  });

  app.get<{ Querystring: GraphQuery }>('/v1/graph/chain', async (request) => {
    const { graph } = graphFor(request.query);
    const chain = graph.chains.get(request.query.id ?? '');
    if (!chain) throw badRequest(`no chain ${request.query.id ?? ''} in the IPv${graph.family} rules`, 'id');
    const limit = limitOf(request.query.limit, 100);
    const children = childrenOf(graph, chain);
    const to = targetsByRule(chain.edges);
    return {
      chain: summaryOf(chain),
      rules: chain.ruleTexts().map((text, index) => ({ text, to: to.get(index) ?? [] })),
      children: children.slice(0, limit).map(summaryOf),
      more: Math.max(0, children.length - limit),
      path: pathTo(graph, chain.id),
    };
  });

  app.get<{ Querystring: GraphQuery }>('/v1/graph/search', async (request) => {
    const { graph } = graphFor(request.query);
    const { matches, total } = searchChains(graph, request.query.q ?? '', limitOf(request.query.limit, 50));
    return { total, matches: matches.map((c) => ({ chain: summaryOf(c), path: pathTo(graph, c.id) })) };
  });

  app.get<{ Querystring: { q?: string; limit?: string; node?: string } }>('/v1/ipvs', async (request) => {
    const compiled = options.served(request.query.node || undefined).compiled('ipvs') as CompiledIpvsNode;
    const words = (request.query.q ?? '').toLowerCase().split(/\s+/).filter((w) => w !== '');
    const limit = limitOf(request.query.limit, 200);
    const rows = kernelTableOf(compiled).services.map((vs) => ({
      protocol: vs.protocol,
      address: serviceAddr(vs),
      scheduler: vs.scheduler,
      persistentSeconds: isPersistent(vs) ? vs.timeoutSeconds : null,
      service: vs.origin?.spn ?? null,
      kind: vs.origin?.kind ?? null,
      dests: vs.dests.map((d) => ({ address: destAddr(d), forward: d.forward, weight: d.weight })),
    }));
    const matching = rows.filter((r) => words.every((w) => `${r.address} ${r.protocol} ${r.service ?? ''} ${r.kind ?? ''}`.toLowerCase().includes(w)));
    return { total: rows.length, matching: matching.length, services: matching.slice(0, limit) };
  });

  let comparing = false;
  app.get<{ Querystring: { target?: string; proto?: string; schedulers?: string; duration?: string; connections?: string } }>('/v1/compare/stream', async (request, reply) => {
    const q = request.query;
    const target = q.target === undefined || q.target === '' ? undefined : parseTargetFlag(q.target);
    const schedulers = (q.schedulers ?? 'rr,lc').split(',').map((s) => s.trim()).filter((s) => s !== '');
    const unknown = schedulers.find((s) => !isSchedulerName(s));
    if (unknown !== undefined || schedulers.length === 0) throw badRequest(`schedulers: ${JSON.stringify(unknown ?? '')} is not one of ${schedulerNames.join(', ')}`, 'schedulers');
    const durationSeconds = numberOf(q.duration, 1, 0.1, 30, 'duration');
    const connections = numberOf(q.connections, 10, 1, 1000, 'connections');
    const protocol = (q.proto ?? 'tcp').toLowerCase() === 'udp' ? 'UDP' : 'TCP';
    if (comparing) return reply.status(409).send({ code: 'KPSIM_ERR_API_BAD_REQUEST', message: 'a compare is already running on this server: wait for it to finish', path: 'target' });
    comparing = true;
    const view = options.served().view;
    openEventStream(reply);
    const send = sender(reply);
    try {
      const report = await runCompare(view, {
        ...(target !== undefined ? { target } : {}),
        protocol,
        schedulers,
        durationSeconds,
        connections: Math.round(connections),
        onProgress: (line) => {
          const m = /^\[(\d+)\/(\d+)\]/.exec(line);
          send('progress', { line, ...(m ? { step: Number(m[1]), steps: Number(m[2]) } : {}) });
        },
        onRow: (row) => send('row', row),
      });
      send('report', report);
    } catch (e) {
      send('error', isKpsimError(e) ? e.toJSON() : { code: 'KPSIM_ERR_INTERNAL', message: `internal error: ${(e as Error).message}` });
    } finally {
      comparing = false;
      if (!reply.raw.destroyed) reply.raw.end();
    }
  });
}

/** Each rule's jump targets, by rule index (KUBE-SERVICES has a rule per service: no scan per rule). */
function targetsByRule(edges: readonly GraphEdge[]): Map<number, string[]> {
  const by = new Map<number, string[]>();
  for (const e of edges) {
    const list = by.get(e.rule);
    if (list) list.push(e.to);
    else by.set(e.rule, [e.to]);
  }
  return by;
}

/**
 * Writes one server-sent event (an empty name writes a keep-alive comment); nothing once the
 * client has gone (a compare keeps running to its end after the page is closed).
 */
function sender(reply: FastifyReply): (event: string, data: unknown) => void {
  return (event, data) => {
    if (reply.raw.destroyed || reply.raw.writableEnded) return;
    reply.raw.write(event === '' ? ': keep-alive\n\n' : `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
}

function openEventStream(reply: FastifyReply): void {
  reply.hijack();
  reply.raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
}

function parseMode(value: string): RulesMode {
  if ((RULES_MODES as readonly string[]).includes(value)) return value as RulesMode;
  throw badRequest(`mode: ${JSON.stringify(value)} is not one of ${RULES_MODES.join(', ')}`, 'mode');
}

function limitOf(value: string | undefined, fallback: number): number {
  const n = value === undefined ? fallback : Number(value);
  return Number.isInteger(n) && n > 0 ? Math.min(n, 10_000) : fallback;
}

function numberOf(value: string | undefined, fallback: number, min: number, max: number, path: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) throw badRequest(`${path}: ${JSON.stringify(value)} is not a number from ${min} to ${max}`, path);
  return n;
}
