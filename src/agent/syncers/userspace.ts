/**
 * Userspace mode in the agent: the node's "kernel" is kpsim's userspace proxy on loopback
 * (src/proxy/), reconfigured live at each sync. Every TCP virtual address the node serves gets a
 * listener on a stable loopback stand-in (the same one for as long as the agent runs, so a
 * client keeps finding it); an address that goes away loses its listener (connections it
 * accepted run on until they end); endpoints join and leave the listeners' schedulers, a leaving
 * one draining (its connections finish, new ones go elsewhere). No established connection is
 * dropped by a sync.
 *
 * Where the endpoints' pods are: `userspace.backendAddress` when the caller runs them (the churn
 * demo's pods, probed and killed on their own), else backend pods the agent starts itself for
 * new endpoints, as `kpsim up` does.
 */
import { entryKey, loopbackAddress, virtualAddressesOf, type VirtualEntry, type VirtualKind } from '../../proxy/address-map.js';
import { type Backends, startBackends } from '../../proxy/backends.js';
import { type UserspaceProxy, startProxy } from '../../proxy/proxy.js';
import type { ProxierServicePort } from '../../tracker/types.js';
import type { FamilySyncer, ModeSyncer, SyncerContext } from '../syncer.js';

const SHARED_KEY = 'userspace';

interface UserspaceShared {
  readonly proxy: UserspaceProxy;
  readonly backends: Backends | undefined;
  /** Host numbers of virtual IPs in their kind's 127.K.0.0/16 block, given once and kept. */
  readonly hostNumbers: Map<string, number>;
  readonly nextHost: Map<VirtualKind, number>;
}

async function sharedOf(context: SyncerContext): Promise<UserspaceShared> {
  let pending = context.shared.get(SHARED_KEY) as Promise<UserspaceShared> | undefined;
  if (pending === undefined) {
    pending = (async () => {
      const options = context.options.userspace ?? {};
      const ports = options.ephemeralPorts ? 'ephemeral' : 'service';
      const backends = options.backendAddress === undefined ? await startBackends([], { ports }) : undefined;
      const proxy = await startProxy([], {
        scheduler: context.options.scheduler ?? (context.config().ipvsScheduler || 'rr'),
        ports,
        ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
        backendAddress: options.backendAddress ?? ((endpoint) => backends!.address(endpoint)),
      });
      return { proxy, backends, hostNumbers: new Map(), nextHost: new Map() };
    })();
    context.shared.set(SHARED_KEY, pending);
  }
  return pending;
}

function stableLoopback(shared: UserspaceShared, kind: VirtualKind, family: 4 | 6, ip: string): string {
  const key = `${kind}\0${ip}`;
  let host = shared.hostNumbers.get(key);
  if (host === undefined) {
    host = family === 6 ? 0 : (shared.nextHost.get(kind) ?? 0) + 1;
    if (family === 4) shared.nextHost.set(kind, host);
    shared.hostNumbers.set(key, host);
  }
  return loopbackAddress(family, kind, host);
}

export const userspaceSyncer: ModeSyncer = {
  mode: 'userspace',
  metrics: [],
  create(context: SyncerContext): FamilySyncer {
    let shared: UserspaceShared | undefined;
    return {
      async sync({ update, full }) {
        shared = await sharedOf(context);
        const { proxy } = shared;
        const state = update.state;
        const ephemeral = context.options.userspace?.ephemeralPorts ?? false;
        if (shared.backends !== undefined) await shared.backends.ensure(state);
        const notes: string[] = [];
        const wanted = new Map<string, { entry: VirtualEntry; sp: ProxierServicePort }>();
        for (const sp of state.servicePorts) {
          for (const w of virtualAddressesOf(sp, state, notes)) {
            if (!w.proxied) continue;
            const key = entryKey(w.kind, w.virtual, w.protocol);
            const address = stableLoopback(shared, w.kind, state.family, w.virtual.address);
            wanted.set(key, { entry: { ...w, key, loopback: { address, port: ephemeral || state.family === 6 ? 0 : w.virtual.port } }, sp });
          }
        }
        const lines: string[] = [];
        try {
          context.kernelHook?.({ family: context.family, full, mode: 'userspace' });
          for (const key of proxy.listenerKeys()) {
            const entry = proxy.map.entry(key);
            if (entry === undefined || entry.family !== state.family) continue;
            const want = wanted.get(key);
            // Another service port took the address: its listener starts afresh.
            if (want !== undefined && want.entry.spn === entry.spn) continue;
            await proxy.removeListener(key);
            lines.push(`- listener ${key} (${entry.spn}); its open connections run on`);
          }
          for (const [key, { entry, sp }] of wanted) {
            if (proxy.map.entry(key) !== undefined) continue;
            const bound = await proxy.addListener(entry, sp);
            lines.push(`+ listener ${key} (${entry.spn}) on ${bound.loopback.address}:${bound.loopback.port}${bound.fallback ? ` (${bound.fallback})` : ''}`);
          }
        } catch (e) {
          return { ok: false, error: (e as Error).message, payload: [{ name: 'userspace', text: () => lines.join('\n') }], summary: 'listener change failed' };
        }
        const change = proxy.updateFamily(state);
        for (const ep of change.added) lines.push(`+ endpoint ${ep}`);
        for (const ep of change.removed) lines.push(`- endpoint ${ep} (draining)`);
        const text = lines.length === 0 ? '' : `${lines.join('\n')}\n`;
        return {
          ok: true,
          payload: [{ name: 'userspace', text: () => text }],
          summary: `${lines.filter((l) => l.includes('listener')).length} listener changes, ${change.added.length} endpoints joined, ${change.removed.length} left (draining)`,
        };
      },
      state: () => [{ name: 'address-map', text: () => shared?.proxy.map.render() ?? '' }],
    };
  },
  async close(sharedState) {
    const pending = sharedState.get(SHARED_KEY) as Promise<UserspaceShared> | undefined;
    if (pending === undefined) return;
    const shared = await pending;
    await shared.proxy.close();
    await shared.backends?.close();
  },
};

/** The running proxy of an agent in userspace mode (for callers that send traffic through it). */
export async function userspaceProxyOf(shared: Map<string, unknown>): Promise<UserspaceProxy | undefined> {
  const pending = shared.get(SHARED_KEY) as Promise<UserspaceShared> | undefined;
  return pending === undefined ? undefined : (await pending).proxy;
}
