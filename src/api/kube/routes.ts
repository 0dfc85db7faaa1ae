/**
 * The Kubernetes API as a fastify plugin: discovery, OpenAPI, and for every served kind list,
 * watch, get, create, update (PUT), patch (four kinds), delete and deletecollection, at the
 * paths the real server has:
 *
 *   /api/v1/{resource}                              cluster-scoped kinds, or every namespace's
 *   /api/v1/{resource}/{name}[/status]
 *   /api/v1/namespaces/{namespace}/{resource}[/{name}[/status|/scale]]
 *   /apis/{group}/{version}/...                     the same for named groups
 *
 * `/scale` (Deployments, ReplicaSets, StatefulSets) answers GET, PUT and PATCH with an
 * autoscaling/v1 Scale, as `kubectl scale` expects (scale.ts).
 *
 * Every error is a `Status`. Bodies are JSON or YAML (a YAML alias bomb is a 400), at most
 * `bodyLimitBytes` (413 beyond). Human-readable `kubectl get` asks for a Table and gets one.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { KpsimError, isKpsimError } from '../../errors.js';
import { parseDocuments } from '../../manifest/decode.js';
import type { Json, JsonObject } from '../../model/fields.js';
import { isObject } from '../../model/fields.js';
import type { Warning } from '../../model/types.js';
import {
  AGGREGATED_CONTENT_TYPE,
  SERVER_VERSION,
  aggregatedDiscovery,
  legacyCoreVersions,
  legacyGroup,
  legacyGroupList,
  openapiDocument,
  openapiRoot,
  resourceList,
  wantsAggregated,
} from './discovery.js';
import { PATCH_CONTENT_TYPES } from './patch.js';
import { type ResourceType, type Subresource, apiVersionOf, findResource } from './resources.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import {
  type Status,
  badRequest,
  expired,
  internalError,
  isStatusError,
  methodNotAllowed,
  notFound,
  pathNotFound,
  requestEntityTooLarge,
  tooLargeResourceVersion,
  unsupportedMediaType,
} from './status.js';
import { type KubeStore, objectKey } from './store.js';
import { type IncludeObject, toTable } from './table.js';
import { type WatchEventType, type WatchHub, type WatchSink, matchesWatch } from './watch.js';

export interface KubeApiOptions {
  store: KubeStore;
  hub: WatchHub;
  /** Clock for table ages. */
  now?: () => number;
  /** Largest request body; the real server's limit is 3 MiB. */
  bodyLimitBytes?: number;
  /** A watch without timeoutSeconds ends after this long times 1 to 2 (kube-apiserver --min-request-timeout). */
  minRequestTimeoutSeconds?: number;
  /** A watcher whose unsent bytes pass this is closed (it re-watches from its last resourceVersion). */
  watchBufferLimitBytes?: number;
}

export const DEFAULT_BODY_LIMIT_BYTES = 3 * 1024 * 1024;
const WRITE_CONTENT_TYPES = ['application/json', 'application/yaml'];

interface Target {
  type: ResourceType;
  /** Set for namespaced kinds reached through /namespaces/{ns}/; undefined means every namespace. */
  namespace?: string;
  name?: string;
  subresource?: Subresource;
}

type Query = Record<string, string | undefined>;

function queryOf(request: FastifyRequest): Query {
  const raw = request.query as Record<string, string | string[] | undefined>;
  const out: Query = {};
  for (const [k, v] of Object.entries(raw)) out[k] = Array.isArray(v) ? v[v.length - 1] : v;
  return out;
}

function isTrue(value: string | undefined): boolean {
  return value === 'true' || value === '1';
}

/** The resource a path under a group-version names, or undefined for the group-version itself. */
function parseTarget(group: string, version: string, rest: string[]): Target | undefined {
  if (rest.length === 0) return undefined;
  const resource = (name: string): ResourceType => {
    const type = findResource(group, version, name);
    if (!type) throw pathNotFound();
    return type;
  };
  const subresourceOf = (type: ResourceType, text: string | undefined): Subresource | undefined => {
    if (text === undefined) return undefined;
    const found = type.subresources.find((s) => s === text);
    if (found) return found;
    throw pathNotFound();
  };
  // /namespaces/{ns}/{resource}/...; in the core group /namespaces/{name}/status is the Namespace's own status.
  if (rest[0] === 'namespaces' && rest.length >= 3 && !(group === '' && rest[2] === 'status')) {
    const type = resource(rest[2]!);
    if (!type.namespaced || rest.length > 5) throw pathNotFound();
    return { type, namespace: rest[1]!, ...(rest[3] !== undefined ? { name: rest[3] } : {}), ...(rest[4] !== undefined ? { subresource: subresourceOf(type, rest[4]) } : {}) };
  }
  const type = resource(rest[0]!);
  if (rest.length > 3 || (type.namespaced && rest.length > 1)) throw pathNotFound();
  return { type, ...(rest[1] !== undefined ? { name: rest[1] } : {}), ...(rest[2] !== undefined ? { subresource: subresourceOf(type, rest[2]) } : {}) };
}

/** `Warning: 299 - "..."` headers, as the real server sends them and kubectl prints them. */
function warningHeaders(warnings: readonly Warning[]): string[] {
  return warnings.map((w) => {
    const text = [w.object, w.path, w.message].filter((p) => p !== undefined && p !== '').join(': ');
    // eslint-disable-next-line no-control-regex
    return `299 - "${text.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[^\x20-\x7e]/g, '?')}"`;
  });
}

function wantsTable(request: FastifyRequest): boolean {
  return /as=Table/.test(request.headers.accept ?? '');
}

function includeObjectOf(query: Query): IncludeObject {
  const value = query['includeObject'];
  if (value === undefined || value === '') return 'PartialObjectMetadata';
  if (value === 'None' || value === 'Object' || value === 'PartialObjectMetadata') return value;
  throw badRequest(`includeObject: unsupported value ${JSON.stringify(value)}: supported values are None, Object, PartialObjectMetadata`);
}

/** The request body: JSON or YAML (one document), parsed with kpsim's manifest reader. */
function bodyOf(request: FastifyRequest, allowed: readonly string[]): Json {
  const contentType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (!allowed.includes(contentType)) throw unsupportedMediaType(contentType, allowed);
  const text = typeof request.body === 'string' ? request.body : '';
  if (text.trim() === '') throw badRequest('the request has no body');
  const first = text.trimStart()[0];
  if (first === '{' || first === '[') {
    try {
      return JSON.parse(text) as Json;
    } catch (e) {
      throw badRequest(`the request body is not valid JSON: ${(e as Error).message}`);
    }
  }
  const problems: KpsimError[] = [];
  const docs = parseDocuments(text, 'request body', problems);
  if (problems.length > 0) throw badRequest(problems.map((p) => p.message).join('; '));
  if (docs.length !== 1) throw badRequest(`the request body holds ${docs.length} documents; send one object`);
  return docs[0]!;
}

/** A continue token as the real server makes them: base64 of {v, rv, start}. */
function encodeContinue(rv: number, start: string): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv, start })).toString('base64url');
}

function decodeContinue(token: string): { rv: number; start: string } {
  try {
    const value = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { v?: string; rv?: number; start?: string };
    if (value.v === 'meta.k8s.io/v1' && typeof value.rv === 'number' && typeof value.start === 'string') return { rv: value.rv, start: value.start };
  } catch {
    // falls through to the 400
  }
  throw badRequest('continue key is not valid: the token does not come from this server');
}

export function statusOfError(error: unknown, bodyLimit: number): Status {
  if (isStatusError(error)) return error.status;
  if (isKpsimError(error)) return badRequest(error.message).status;
  const fastifyError = error as Partial<FastifyError>;
  if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || fastifyError.statusCode === 413) return requestEntityTooLarge(bodyLimit).status;
  if (fastifyError.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || fastifyError.statusCode === 415) return unsupportedMediaType('', WRITE_CONTENT_TYPES).status;
  if (typeof fastifyError.statusCode === 'number' && fastifyError.statusCode < 500) return badRequest(fastifyError.message ?? 'bad request').status;
  return internalError(error instanceof Error ? error.message : String(error)).status;
}

export async function kubeApiPlugin(app: FastifyInstance, options: KubeApiOptions): Promise<void> {
  const { store, hub } = options;
  const now = options.now ?? Date.now;
  const bodyLimit = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  const minTimeout = options.minRequestTimeoutSeconds ?? 1800;
  const bufferLimit = options.watchBufferLimitBytes ?? 64 * 1024 * 1024;

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit }, (_request, body, done) => done(null, body));
  app.setErrorHandler((error, _request, reply) => {
    const status = statusOfError(error, bodyLimit);
    return reply.status(status.code).type('application/json').send(status);
  });
  app.addHook('preClose', (done) => {
    hub.closeAll();
    done();
  });

  app.get('/version', async () => SERVER_VERSION);
  for (const path of ['/healthz', '/livez', '/readyz']) app.get(path, async (_request, reply) => reply.type('text/plain; charset=utf-8').send('ok'));
  app.get('/openapi/v3', async () => openapiRoot());
  app.get('/openapi/v3/*', async (request) => {
    const rest = (request.params as { '*': string })['*'].split('/');
    const doc = rest[0] === 'api' && rest.length === 2 ? openapiDocument('', rest[1]!) : rest[0] === 'apis' && rest.length === 3 ? openapiDocument(rest[1]!, rest[2]!) : undefined;
    if (!doc) throw pathNotFound();
    return doc;
  });
  app.all('/openapi/*', async () => {
    throw pathNotFound();
  });

  app.all('/api', async (request, reply) => discoveryRoot(request, reply, true));
  app.all('/apis', async (request, reply) => discoveryRoot(request, reply, false));
  app.all('/api/*', async (request, reply) => {
    const parts = pathParts(request);
    if (parts.length === 0) return discoveryRoot(request, reply, true);
    return dispatch(request, reply, '', parts[0]!, parts.slice(1));
  });
  app.all('/apis/*', async (request, reply) => {
    const parts = pathParts(request);
    if (parts.length === 0) return discoveryRoot(request, reply, false);
    if (parts.length === 1) {
      onlyGet(request);
      const group = legacyGroup(parts[0]!);
      if (!group) throw pathNotFound();
      return group;
    }
    return dispatch(request, reply, parts[0]!, parts[1]!, parts.slice(2));
  });

  function pathParts(request: FastifyRequest): string[] {
    return (request.params as { '*': string })['*'].split('/').filter((p) => p !== '').map((p) => decodeURIComponent(p));
  }

  function onlyGet(request: FastifyRequest): void {
    if (request.method !== 'GET' && request.method !== 'HEAD') throw methodNotAllowed();
  }

  function discoveryRoot(request: FastifyRequest, reply: FastifyReply, core: boolean): unknown {
    onlyGet(request);
    const aggregated = wantsAggregated(request.headers.accept);
    if (aggregated) {
      reply.header('content-type', AGGREGATED_CONTENT_TYPE.replace(';v=v2;', `;v=${aggregated.version};`));
      // A Buffer, so fastify sends the Content-Type exactly as set (client-go parses its parameters).
      return Buffer.from(JSON.stringify(aggregatedDiscovery(core, aggregated.version)));
    }
    return core ? legacyCoreVersions() : legacyGroupList();
  }

  async function dispatch(request: FastifyRequest, reply: FastifyReply, group: string, version: string, rest: string[]): Promise<unknown> {
    const target = parseTarget(group, version, rest);
    if (!target) {
      onlyGet(request);
      const list = resourceList(group, version);
      if (!list) throw pathNotFound();
      return list;
    }
    const query = queryOf(request);
    const dryRun = query['dryRun'] === 'All';
    if (target.subresource === 'scale') return scale(request, reply, target, dryRun);
    const subresource = target.subresource;
    switch (request.method) {
      case 'GET':
        if (target.name === undefined) return isTrue(query['watch']) ? watch(request, reply, target, query) : list(request, target, query);
        return get(request, target, query);
      case 'POST': {
        if (target.name !== undefined || (target.type.namespaced && target.namespace === undefined)) throw methodNotAllowed();
        const result = await store.create(target.type, target.namespace ?? '', asObject(bodyOf(request, WRITE_CONTENT_TYPES), target.type), { dryRun });
        return written(reply, result.object, result.warnings, 201);
      }
      case 'PUT': {
        if (target.name === undefined) throw methodNotAllowed();
        const result = await store.update(target.type, target.namespace ?? '', target.name, asObject(bodyOf(request, WRITE_CONTENT_TYPES), target.type), {
          dryRun,
          ...(subresource ? { subresource } : {}),
        });
        return written(reply, result.object, result.warnings, result.created ? 201 : 200);
      }
      case 'PATCH': {
        if (target.name === undefined) throw methodNotAllowed();
        const contentType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
        const patchType = PATCH_CONTENT_TYPES[contentType];
        if (!patchType) throw unsupportedMediaType(contentType, Object.keys(PATCH_CONTENT_TYPES));
        if (patchType === 'apply' && !query['fieldManager']) throw badRequest('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch');
        const body = bodyOf(request, [contentType]);
        const result = await store.patch(target.type, target.namespace ?? '', target.name, patchType, body, { dryRun, ...(subresource ? { subresource } : {}) });
        return written(reply, result.object, result.warnings, result.created ? 201 : 200);
      }
      case 'DELETE': {
        const deleteOptions = deleteOptionsOf(request);
        const isDryRun = dryRun || (Array.isArray(deleteOptions['dryRun']) && deleteOptions['dryRun'].includes('All'));
        if (target.name === undefined) {
          const labels = parseLabelSelector(query['labelSelector']);
          const fields = parseFieldSelector(query['fieldSelector'], target.type);
          const deleted = await store.deleteCollection(target.type, target.namespace, (obj) => matchesWatch({ labels, fields }, obj), { dryRun: isDryRun });
          return { kind: `${target.type.kind}List`, apiVersion: apiVersionOf(target.type), metadata: { resourceVersion: String(store.resourceVersion) }, items: deleted };
        }
        if (target.subresource) throw methodNotAllowed();
        const pre = isObject(deleteOptions['preconditions']) ? deleteOptions['preconditions'] : {};
        return store.delete(
          target.type,
          target.namespace ?? '',
          target.name,
          { ...(typeof pre['uid'] === 'string' ? { uid: pre['uid'] } : {}), ...(typeof pre['resourceVersion'] === 'string' ? { resourceVersion: pre['resourceVersion'] } : {}) },
          { dryRun: isDryRun },
        );
      }
      default:
        throw methodNotAllowed();
    }
  }

  /** The `scale` subresource: GET, PUT and PATCH of the object as an autoscaling/v1 Scale. */
  async function scale(request: FastifyRequest, reply: FastifyReply, target: Target, dryRun: boolean): Promise<unknown> {
    const namespace = target.namespace ?? '';
    const name = target.name!;
    switch (request.method) {
      case 'GET':
        return store.getScale(target.type, namespace, name);
      case 'PUT': {
        const result = await store.writeScale(target.type, namespace, name, { scale: bodyOf(request, WRITE_CONTENT_TYPES) }, { dryRun });
        return written(reply, result.object, result.warnings, 200);
      }
      case 'PATCH': {
        const contentType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
        const patchType = PATCH_CONTENT_TYPES[contentType];
        if (!patchType) throw unsupportedMediaType(contentType, Object.keys(PATCH_CONTENT_TYPES));
        const result = await store.writeScale(target.type, namespace, name, { patchType, patch: bodyOf(request, [contentType]) }, { dryRun });
        return written(reply, result.object, result.warnings, 200);
      }
      default:
        throw methodNotAllowed();
    }
  }

  function asObject(body: Json, type: ResourceType): JsonObject {
    if (!isObject(body)) throw badRequest(`the body of the request is not a ${type.kind} object`);
    return body;
  }

  function deleteOptionsOf(request: FastifyRequest): JsonObject {
    const text = typeof request.body === 'string' ? request.body.trim() : '';
    if (text === '') return {};
    const body = bodyOf(request, WRITE_CONTENT_TYPES);
    return isObject(body) ? body : {};
  }

  function written(reply: FastifyReply, object: JsonObject, warnings: readonly Warning[], code: number): JsonObject {
    if (warnings.length > 0) reply.header('warning', warningHeaders(warnings));
    reply.status(code);
    return object;
  }

  function get(request: FastifyRequest, target: Target, query: Query): unknown {
    const obj = store.get(target.type, target.namespace ?? '', target.name!);
    if (!obj) throw notFound(target.type, target.name!);
    if (wantsTable(request)) return toTable(target.type, [obj], { now: now(), include: includeObjectOf(query), resourceVersion: String(store.resourceVersion) });
    return obj;
  }

  /** The resourceVersion a list or watch is served at: the current one, or 504/410 for one kpsim cannot serve. */
  function checkResourceVersion(query: Query): void {
    const text = query['resourceVersion'];
    if (text === undefined || text === '' || text === '0') return;
    const rv = Number(text);
    if (!Number.isSafeInteger(rv) || rv < 0) throw badRequest(`resourceVersion: Invalid value: ${JSON.stringify(text)}: must be a whole number`);
    if (rv > store.resourceVersion) throw tooLargeResourceVersion(rv, store.resourceVersion);
    if (query['resourceVersionMatch'] === 'Exact' && query['watch'] === undefined && rv !== store.resourceVersion) {
      throw expired(`too old resource version: ${rv} (${store.resourceVersion}): kpsim keeps only the current state for lists`);
    }
  }

  function list(request: FastifyRequest, target: Target, query: Query): unknown {
    checkResourceVersion(query);
    const labels = parseLabelSelector(query['labelSelector']);
    const fields = parseFieldSelector(query['fieldSelector'], target.type);
    const limit = query['limit'] !== undefined && query['limit'] !== '' ? Number(query['limit']) : 0;
    if (!Number.isSafeInteger(limit) || limit < 0) throw badRequest(`limit: Invalid value: ${JSON.stringify(query['limit'])}: must be a whole number`);
    let rv = store.resourceVersion;
    let start: string | undefined;
    if (query['continue']) {
      const token = decodeContinue(query['continue']);
      if (token.rv < store.oldestResourceVersion) {
        throw expired('The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
      }
      rv = token.rv;
      start = token.start;
    }
    const filter = { ...(target.namespace !== undefined ? { namespace: target.namespace } : {}), labels, fields };
    let candidates = fields.name !== undefined && target.namespace !== undefined ? [store.get(target.type, target.namespace, fields.name)].filter((o): o is JsonObject => o !== undefined) : store.list(target.type, target.namespace);
    if (start !== undefined) candidates = candidates.filter((obj) => keyOf(target.type, obj) >= start!);
    const items: JsonObject[] = [];
    let continueToken: string | undefined;
    let remaining = 0;
    for (const obj of candidates) {
      if (!matchesWatch(filter, obj)) continue;
      if (limit > 0 && items.length === limit) {
        continueToken ??= encodeContinue(rv, keyOf(target.type, obj));
        remaining++;
        continue;
      }
      items.push(obj);
    }
    if (wantsTable(request)) {
      return toTable(target.type, items, { now: now(), include: includeObjectOf(query), resourceVersion: String(rv), ...(continueToken ? { continueToken } : {}) });
    }
    return {
      kind: `${target.type.kind}List`,
      apiVersion: apiVersionOf(target.type),
      metadata: { resourceVersion: String(rv), ...(continueToken ? { continue: continueToken, remainingItemCount: remaining } : {}) },
      items,
    };
  }

  function keyOf(type: ResourceType, obj: JsonObject): string {
    const meta = isObject(obj['metadata']) ? obj['metadata'] : {};
    return objectKey(type, String(meta['namespace'] ?? ''), String(meta['name'] ?? ''));
  }

  function watch(request: FastifyRequest, reply: FastifyReply, target: Target, query: Query): void {
    checkResourceVersion(query);
    const labels = parseLabelSelector(query['labelSelector']);
    const fields = parseFieldSelector(query['fieldSelector'], target.type);
    const table = wantsTable(request);
    const include = table ? includeObjectOf(query) : 'Object';
    const timeoutText = query['timeoutSeconds'];
    const timeoutSeconds = timeoutText !== undefined && timeoutText !== '' ? Number(timeoutText) : minTimeout * (1 + Math.random());
    if (!Number.isFinite(timeoutSeconds) || timeoutSeconds < 0) throw badRequest(`timeoutSeconds: Invalid value: ${JSON.stringify(timeoutText)}`);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    // Lines are gathered and written once per turn of the event loop: when writes come faster
    // than the loop turns, a watcher gets several events in one socket write instead of one each
    // (measured: the fan-out to 100 watchers is bound by per-write cost, bench/api.bench.ts).
    let pending: string[] = [];
    let pendingBytes = 0;
    let scheduled = false;
    const flush = (): void => {
      scheduled = false;
      if (pending.length === 0 || res.writableEnded) return;
      res.write(pending.length === 1 ? pending[0]! : pending.join(''));
      pending = [];
      pendingBytes = 0;
    };
    const sink: WatchSink = {
      write: (line) => {
        pending.push(line);
        pendingBytes += line.length;
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
        return res.writableLength + pendingBytes <= bufferLimit;
      },
      end: () => {
        flush();
        res.end();
      },
      onClose: (listener) => res.on('close', listener),
    };
    hub.watch({
      type: target.type,
      ...(target.namespace !== undefined ? { namespace: target.namespace } : {}),
      labels,
      fields,
      ...(query['resourceVersion'] !== undefined ? { resourceVersion: query['resourceVersion'] } : {}),
      sendInitialEvents: isTrue(query['sendInitialEvents']),
      allowBookmarks: isTrue(query['allowWatchBookmarks']),
      timeoutMs: timeoutSeconds * 1000,
      format: table ? `table:${include}` : 'object',
      render: table ? (obj: JsonObject, _type: WatchEventType) => toTable(target.type, [obj], { now: now(), include }) : (obj: JsonObject) => obj,
      sink,
    });
  }
}

