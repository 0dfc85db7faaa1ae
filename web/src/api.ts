/** The server's JSON, as the page reads it, and the two ways the page talks to it. */

export interface EndpointView {
  endpoint: string; ready: boolean; serving: boolean; terminating: boolean; local: boolean;
  node?: string; zone?: string; pod?: string;
}
export interface ServicePortView {
  family: number; name: string; namespace: string; service: string; portName: string; type: string;
  protocol: string; clusterIP: string; port: number; nodePort: number; externalIPs: string[]; loadBalancerVIPs: string[];
  externalTrafficPolicy: string; internalTrafficPolicy: string; sessionAffinity: string; sessionAffinityTimeoutSeconds: number;
  endpoints: EndpointView[]; reachable: string[];
}
export interface NodeView { name: string; addresses: string[]; podCIDRs: string[]; zone?: string; ready: boolean }
export interface ClusterView {
  node: { name: string; ips: string[] }; families: number[]; defaultMode: string; resourceVersion?: number;
  servicePorts: ServicePortView[]; nodes: NodeView[];
}

export interface Hop { table: string; chain: string; rule: string; target: string; probability?: number; depth?: number; notes?: string[]; assumed?: true }
export interface TraceResult {
  verdict: string; endpoints: string[]; probabilities: Record<string, number>;
  masquerade: boolean; masqueradeByEndpoint: Record<string, boolean>; hops: Hop[];
  outcomes?: Record<string, number>; origin?: string;
}

export interface ChainSummary { id: string; table: string; name: string; base: boolean; rules: number; children: number }
export interface GraphRoots { mode: string; family: number; families: number[]; chains: number; rules: number; roots: ChainSummary[] }
export interface ChainDetail { chain: ChainSummary; rules: { text: string; to: string[] }[]; children: ChainSummary[]; more: number; path: string[] }
export interface SearchResult { total: number; matches: { chain: ChainSummary; path: string[] }[] }
export interface IpvsView {
  total: number; matching: number;
  services: { protocol: string; address: string; scheduler: string; persistentSeconds: number | null; service: string | null; kind: string | null; dests: { address: string; forward: string; weight: number }[] }[];
}

/** An error answer of the API: {code, message, path?}. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly path?: string) {
    super(message);
  }
}

async function errorOf(res: Response): Promise<ApiError> {
  const text = await res.text();
  try {
    const body = JSON.parse(text) as { code?: string; message?: string; path?: string };
    return new ApiError(res.status, body.code ?? 'HTTP', body.message ?? text, body.path);
  } catch {
    return new ApiError(res.status, 'HTTP', `${res.status} ${res.statusText}: ${text.slice(0, 200)}`);
  }
}

export async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw await errorOf(res);
  return (await res.json()) as T;
}

export async function postJson<T>(url: string, body: unknown): Promise<T> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw await errorOf(res);
  return (await res.json()) as T;
}

export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  return q.toString();
}

/**
 * Reads a server-sent event stream with fetch (not EventSource), so that a refused request's
 * JSON error reaches the page instead of a bare error event.
 */
export async function readEvents(url: string, onEvent: (event: string, data: unknown) => void): Promise<void> {
  const res = await fetch(url);
  if (!res.ok || !res.body) throw await errorOf(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (data !== '') onEvent(event, JSON.parse(data));
    }
  }
}

/** `document.createElement` with text and attributes, children appended. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`the page has no #${id}`);
  return e as T;
}

/** A server error (or a network failure) as the page's message line. */
export function showMessage(text: string | undefined): void {
  const box = byId('message');
  box.hidden = text === undefined;
  box.textContent = text ?? '';
}

export function messageOf(e: unknown): string {
  if (e instanceof ApiError) return `${e.message} (${e.code}, HTTP ${e.status})`;
  return `cannot reach the kpsim server: ${(e as Error).message}`;
}
