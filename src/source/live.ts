/**
 * A live cluster as a source: the Services, EndpointSlices and Nodes an API server holds (and
 * kube-system's kube-proxy ConfigMap's KubeProxyConfiguration, unless --config gives one),
 * listed through @kubernetes/client-node, page by page, read only. The objects then go through
 * the same decoding and validation as files (manifest/load.ts), so a live cluster gives the same
 * Cluster loadCluster gives for its `kubectl get -o yaml` output.
 *
 * Failures are one line each: the server cannot be reached, its certificate is not trusted, it
 * refused the credentials (401/403), or it answered something else.
 */
import { type ApiException, CoreV1Api, DiscoveryV1Api } from '@kubernetes/client-node';
import { KpsimError } from '../errors.js';
import { parseDocuments } from '../manifest/decode.js';
import { type LoadOptions, type ManifestObject, clusterFromObjects } from '../manifest/load.js';
import { type Json, type JsonObject, isObject } from '../model/fields.js';
import type { Cluster, Warning } from '../model/types.js';
import { type LiveSourceOptions, type ResolvedKubeConfig, resolveKubeConfig } from './kubeconfig.js';

export interface LiveRead {
  /** Every object read, as the server stores it (managedFields dropped), with kind and apiVersion. */
  objects: ManifestObject[];
  /** The server's URL. */
  server: string;
  warnings: Warning[];
}

export interface LiveReadOptions extends LiveSourceOptions {
  /** Also read kube-system's kube-proxy ConfigMap (when --config is not given). */
  readProxyConfig?: boolean;
  /** Give up on a request after this long (default 30 s). */
  timeoutMs?: number;
}

const PAGE = 500;
const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'EPROTO',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);
const UNREACHABLE_CODES: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'timed out',
};

function isApiException(e: unknown): e is ApiException<unknown> {
  return e instanceof Error && typeof (e as { code?: unknown }).code === 'number' && 'body' in e;
}

/** The `message` of a Status body, when the server sent one. */
function statusMessage(body: unknown): string | undefined {
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body) as unknown;
    } catch {
      return body.trim() === '' ? undefined : body.trim().slice(0, 200);
    }
  }
  const message = isObject(value as Json) ? (value as JsonObject)['message'] : undefined;
  return typeof message === 'string' ? message : undefined;
}

function systemCode(e: unknown): string | undefined {
  let current: unknown = e;
  for (let depth = 0; depth < 4 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** One clear line for a failed request. */
export function describeSourceError(e: unknown, server: string, what: string): KpsimError {
  if (e instanceof KpsimError) return e;
  if (isApiException(e)) {
    const message = statusMessage(e.body);
    if (e.code === 401 || e.code === 403) {
      const reason = e.code === 401 ? '401 Unauthorized' : '403 Forbidden';
      return new KpsimError('KPSIM_ERR_SOURCE_AUTH', `the API server at ${server} refused the credentials: ${reason}${message ? `: ${message}` : ''}`);
    }
    return new KpsimError('KPSIM_ERR_SOURCE_RESPONSE', `the API server at ${server} answered ${e.code} to ${what}${message ? `: ${message}` : ''}`);
  }
  const code = systemCode(e);
  const detail = (e as Error)?.message?.split('\n')[0] ?? String(e);
  if (code && TLS_CODES.has(code)) {
    return new KpsimError('KPSIM_ERR_SOURCE_TLS', `the API server at ${server} has a certificate kpsim cannot trust: ${detail} (${code}); the kubeconfig must hold its CA (certificate-authority-data)`);
  }
  if (code && UNREACHABLE_CODES[code]) return new KpsimError('KPSIM_ERR_SOURCE_UNREACHABLE', `cannot reach the API server at ${server}: ${UNREACHABLE_CODES[code]} (${code})`);
  if (/HTTP protocol is not allowed/.test(detail)) return new KpsimError('KPSIM_ERR_SOURCE_KUBECONFIG', `the server ${server} is plain http:// but the kubeconfig does not set insecure-skip-tls-verify`);
  return new KpsimError('KPSIM_ERR_SOURCE_RESPONSE', `reading ${what} from ${server} failed: ${detail}`);
}

function withTimeout<T>(promise: Promise<T>, ms: number, server: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new KpsimError('KPSIM_ERR_SOURCE_UNREACHABLE', `cannot reach the API server at ${server}: no answer in ${Math.round(ms / 1000)} s`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

interface Page {
  items: unknown[];
  metadata?: { _continue?: string };
}

/**
 * A typed client object back to the JSON the server sent, with kind and apiVersion, without
 * managedFields. client-node's models use the API's JSON field names, so a JSON round trip is
 * enough (dates come back as RFC 3339 text).
 */
export function toManifest(item: unknown, apiVersion: string, kind: string): JsonObject {
  const json = JSON.parse(JSON.stringify(item)) as JsonObject;
  const meta = isObject(json['metadata']) ? { ...json['metadata'] } : {};
  delete meta['managedFields'];
  return { apiVersion, kind, ...json, metadata: meta };
}

async function listAll(list: (cont: string | undefined) => Promise<Page>, apiVersion: string, kind: string): Promise<JsonObject[]> {
  const out: JsonObject[] = [];
  let cont: string | undefined;
  do {
    const page = await list(cont);
    for (const item of page.items) out.push(toManifest(item, apiVersion, kind));
    cont = page.metadata?._continue || undefined;
  } while (cont);
  return out;
}

/** Reads the objects kube-proxy reads from the cluster the options name. */
export async function readLiveObjects(options: LiveReadOptions): Promise<LiveRead> {
  const resolved: ResolvedKubeConfig = resolveKubeConfig(options);
  const { server } = resolved;
  const core = resolved.kubeConfig.makeApiClient(CoreV1Api);
  const discovery = resolved.kubeConfig.makeApiClient(DiscoveryV1Api);
  const timeoutMs = options.timeoutMs ?? 30_000;
  const read = async <T>(what: string, request: () => Promise<T>): Promise<T> => {
    try {
      return await withTimeout(request(), timeoutMs, server);
    } catch (e) {
      throw describeSourceError(e, server, what);
    }
  };
  const page = (cont: string | undefined): { limit: number; _continue?: string } => ({ limit: PAGE, ...(cont ? { _continue: cont } : {}) });
  const services = await read('services', () => listAll((c) => core.listServiceForAllNamespaces(page(c)), 'v1', 'Service'));
  const slices = await read('endpointslices', () => listAll((c) => discovery.listEndpointSliceForAllNamespaces(page(c)), 'discovery.k8s.io/v1', 'EndpointSlice'));
  const nodes = await read('nodes', () => listAll((c) => core.listNode(page(c)), 'v1', 'Node'));
  const objects: ManifestObject[] = [...services, ...slices, ...nodes].map((doc) => ({ file: server, doc }));
  const warnings: Warning[] = [];
  if (options.readProxyConfig) objects.push(...(await readProxyConfigMap(core, server, timeoutMs, warnings)));
  return { objects, server, warnings };
}

/**
 * kube-system/kube-proxy's KubeProxyConfiguration (kubeadm keeps it under `config.conf`; any key
 * holding one counts). Missing is fine (defaults apply); unreadable is a warning.
 */
async function readProxyConfigMap(core: CoreV1Api, server: string, timeoutMs: number, warnings: Warning[]): Promise<ManifestObject[]> {
  let configMap;
  try {
    configMap = await withTimeout(core.readNamespacedConfigMap({ name: 'kube-proxy', namespace: 'kube-system' }), timeoutMs, server);
  } catch (e) {
    if (isApiException(e) && e.code === 404) return [];
    const error = describeSourceError(e, server, 'ConfigMap kube-system/kube-proxy');
    if (error.code === 'KPSIM_ERR_SOURCE_AUTH' || error.code === 'KPSIM_ERR_SOURCE_RESPONSE') {
      warnings.push({ message: `${error.message}: kube-proxy's defaults are used (give --config FILE)` });
      return [];
    }
    throw error;
  }
  const out: ManifestObject[] = [];
  for (const [key, text] of Object.entries(configMap.data ?? {})) {
    const file = `${server} ConfigMap kube-system/kube-proxy ${key}`;
    if (!/kind:\s*KubeProxyConfiguration|"kind"\s*:\s*"KubeProxyConfiguration"/.test(text)) continue;
    const problems: KpsimError[] = [];
    const docs = parseDocuments(text, file, problems);
    if (problems.length > 0) throw problems[0]!;
    for (const doc of docs) if (isObject(doc) && doc['kind'] === 'KubeProxyConfiguration') out.push({ file, doc });
  }
  return out;
}

/** A live cluster, decoded and validated as files are. */
export async function loadLiveCluster(options: LiveReadOptions, load: LoadOptions = {}): Promise<{ cluster: Cluster; read: LiveRead }> {
  const read = await readLiveObjects(options);
  const cluster = clusterFromObjects(read.objects, load);
  cluster.warnings.unshift(...read.warnings);
  return { cluster, read };
}
