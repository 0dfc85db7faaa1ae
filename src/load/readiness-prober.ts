/**
 * Readiness probes for the churn scenario's pods, doing what the kubelet and the EndpointSlice
 * controller do together: every period, a TCP probe (connect to the pod's port, as a
 * tcpSocket readinessProbe); after `failureThreshold` failures in a row the pod is not ready,
 * after one success it is ready again; each change is written to the Service's EndpointSlice
 * through the Kubernetes API (GET, change the endpoint's conditions, stamp
 * endpoints.kubernetes.io/last-change-trigger-time, PUT with the resourceVersion read, again
 * on a 409), so an agent watching the API sees it as kube-proxy would.
 *
 * Loopback only: the pods' backends listen on 127.x addresses.
 */
import net from 'node:net';
import { goTime } from '../agent/healthz.js';

export interface ProbedPod {
  /** The endpoint's address in the slice ("10.244.1.2"). */
  readonly ip: string;
  /** Where the pod's process listens now (undefined: not started). */
  readonly address: () => { address: string; port: number } | undefined;
}

export interface ProberOptions {
  /** The API server's base URL (http://127.0.0.1:PORT). */
  readonly apiUrl: string;
  readonly namespace: string;
  readonly sliceName: string;
  readonly pods: readonly ProbedPod[];
  readonly periodMs: number;
  readonly failureThreshold: number;
  /** Called after a readiness change was written to the API (or failed to be). */
  readonly onChange?: (ip: string, ready: boolean, written: boolean) => void;
}

const TRIGGER_ANNOTATION = 'endpoints.kubernetes.io/last-change-trigger-time';

export class ReadinessProber {
  readonly #ready = new Map<string, boolean>();
  readonly #failures = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #writes: Promise<void> = Promise.resolve();
  #probing = false;

  constructor(private readonly options: ProberOptions) {
    for (const pod of options.pods) this.#ready.set(pod.ip, true);
  }

  start(): void {
    this.#timer = setInterval(() => void this.#round(), this.options.periodMs);
  }

  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.#writes;
  }

  isReady(ip: string): boolean {
    return this.#ready.get(ip) ?? false;
  }

  async #round(): Promise<void> {
    if (this.#probing) return;
    this.#probing = true;
    try {
      const results = await Promise.all(this.options.pods.map(async (pod) => ({ pod, ok: await tcpProbe(pod.address(), this.options.periodMs) })));
      for (const { pod, ok } of results) {
        const failures = ok ? 0 : (this.#failures.get(pod.ip) ?? 0) + 1;
        this.#failures.set(pod.ip, failures);
        const ready = this.#ready.get(pod.ip) ?? true;
        if (ready && failures >= this.options.failureThreshold) this.#set(pod.ip, false);
        else if (!ready && ok) this.#set(pod.ip, true);
      }
    } finally {
      this.#probing = false;
    }
  }

  #set(ip: string, ready: boolean): void {
    this.#ready.set(ip, ready);
    this.#writes = this.#writes.then(async () => {
      let written = false;
      try {
        written = await this.#write(ip, ready);
      } finally {
        this.options.onChange?.(ip, ready, written);
      }
    });
  }

  /** Read-modify-write of the slice, again on a conflict. */
  async #write(ip: string, ready: boolean): Promise<boolean> {
    const url = `${this.options.apiUrl}/apis/discovery.k8s.io/v1/namespaces/${this.options.namespace}/endpointslices/${this.options.sliceName}`;
    for (let attempt = 0; attempt < 5; attempt++) {
      const got = await fetch(url);
      if (!got.ok) return false;
      const slice = (await got.json()) as { metadata: { annotations?: Record<string, string> }; endpoints?: { addresses: string[]; conditions?: Record<string, boolean> }[] };
      for (const ep of slice.endpoints ?? []) {
        if (ep.addresses[0] !== ip) continue;
        // A live pod that fails its probe: not ready, still serving? The kubelet marks it
        // not ready; the controller writes ready=serving=false for a pod that is not terminating.
        ep.conditions = { ready, serving: ready, terminating: false };
      }
      slice.metadata.annotations = { ...(slice.metadata.annotations ?? {}), [TRIGGER_ANNOTATION]: goTime(Date.now()) };
      const put = await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(slice) });
      if (put.ok) return true;
      if (put.status !== 409) return false;
    }
    return false;
  }
}

/**
 * A tcpSocket probe: does something accept a connection there within `timeoutMs`?
 *
 * The timeout is judged after the loop turn's I/O (setImmediate): timers run before I/O in a
 * libuv turn, so when this process stalls (a loaded machine) the timer would fire before the
 * connect that completed meanwhile is read, and a live pod would be probed not ready. The
 * kubelet's probe does not share the pod's fate that way.
 */
export function tcpProbe(address: { address: string; port: number } | undefined, timeoutMs: number): Promise<boolean> {
  if (address === undefined) return Promise.resolve(false);
  return new Promise((resolve) => {
    const socket = net.connect({ host: address.address, port: address.port });
    let settled = false;
    const done = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => setImmediate(() => done(false)));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
