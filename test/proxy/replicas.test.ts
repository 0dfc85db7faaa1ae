/**
 * The scheduling log keeps several workers' virtual services one: two workers' replicas, driven
 * in this thread through one shared log in an interleaved script (connections scheduled,
 * going inactive, gone, an endpoint removed half way), must pick exactly what one virtual service
 * picks for the same operations in the same order, for every scheduler the kernel has, with and
 * without session affinity. Deterministic: the interleaving is a seeded script.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { schedulerNames } from '../../src/ipvs/schedulers/types.js';
import { planAddressMap } from '../../src/proxy/address-map.js';
import { OpKind, OpLog, RING_ENTRIES, opLogBytes } from '../../src/proxy/op-log.js';
import { type ControlMessage, EndpointIds, Replicas, sharedClockSeconds } from '../../src/proxy/replicas.js';
import { newEndpointStats } from '../../src/proxy/stats.js';
import { type ConnectionScheduler, VirtualServer } from '../../src/proxy/virtual-server.js';
import type { ProxierState } from '../../src/tracker/types.js';
import { seededRng } from '../../src/util/random.js';
import { stateOf, webService } from './helpers.js';

const ENDPOINTS = ['10.180.0.1', '10.180.0.2', '10.180.0.3', '10.180.0.4'];

function serverFor(state: ProxierState, scheduler: string, now: () => number): VirtualServer {
  const entry = planAddressMap(state, { ports: 'ephemeral' }).entries.find((e) => e.kind === 'ClusterIP' && e.proxied)!;
  const sp = state.servicePorts.find((p) => p.info.spn === entry.spn)!;
  const flags = scheduler === 'sh' ? ['sh-fallback'] : scheduler === 'mh' ? ['mh-fallback'] : [];
  return new VirtualServer(entry, sp, { scheduler, schedulerFlags: flags, now }, {
    endpointStats: (_sp, endpoint) => newEndpointStats(endpoint, { address: '127.0.0.1', port: 1 }, undefined),
  });
}

interface Worker {
  readonly server: VirtualServer;
  readonly scheduler: ConnectionScheduler;
  readonly replicas: Replicas;
}

function worker(buffer: SharedArrayBuffer, workers: number, index: number, state: ProxierState, scheduler: string, control: MessagePort): Worker {
  const clock = { now: 0 };
  const server = serverFor(state, scheduler, () => clock.now);
  const replicas = new Replicas(new OpLog(buffer, workers, index), [server], new EndpointIds([state]), clock, control, {
    applyChange: (change) => {
      if (change.kind === 'remove') server.removeEndpoint(change.endpoint);
    },
  });
  return { server, scheduler: replicas.schedulerFor(0), replicas };
}

interface Open {
  readonly owner: number;
  readonly addr: string;
  state: 'active' | 'inactive';
}

for (const scheduler of schedulerNames) {
  for (const affinity of [false, true]) {
    test(`two workers' replicas pick as one virtual service: ${scheduler}${affinity ? ' with ClientIP affinity' : ''}`, () => {
      const state = stateOf(webService({
        endpoints: ENDPOINTS,
        ...(affinity ? { mutate: (s) => { s.spec.sessionAffinity = 'ClientIP'; } } : {}),
      }));
      const buffer = new SharedArrayBuffer(opLogBytes(2));
      const channels = [new MessageChannel(), new MessageChannel()];
      const workers = [0, 1].map((i) => worker(buffer, 2, i, state, scheduler, channels[i]!.port2));
      const main = new OpLog(buffer, 2, -1);
      const reference = serverFor(state, scheduler, sharedClockSeconds);
      const rng = seededRng(7);
      const clients = Array.from({ length: 12 }, (_, i) => `127.0.${i % 3}.${i + 1}`);
      const open: Open[] = [];
      const picks: string[] = [];
      try {
        for (let step = 0; step < 400; step++) {
          if (step === 200) {
            // An endpoint change from the main thread, at the same point for everyone.
            const change = { kind: 'remove' as const, endpoint: `${ENDPOINTS[1]}:8080` };
            for (const c of channels) c.port1.postMessage({ seq: 1, change } satisfies ControlMessage);
            main.lock();
            main.append({ kind: OpKind.Control, listener: 0, state: 0, dest: 1, time: sharedClockSeconds(), client: undefined, avoid: [] });
            main.unlock();
            reference.removeEndpoint(change.endpoint);
          }
          const w = Math.floor(rng() * 2);
          const roll = rng();
          if (roll < 0.55 || open.length === 0) {
            const client = clients[Math.floor(rng() * clients.length)]!;
            const key = reference.clientKey(client, 40000 + step);
            const want = reference.scheduler.connect(key, 'active');
            const got = workers[w]!.scheduler.connect(key, 'active');
            assert.equal(got, want, `step ${step}: worker ${w} picked ${got}, one virtual service ${want}; picks so far ${picks.join(' ')}`);
            picks.push(String(got));
            if (got !== undefined) open.push({ owner: w, addr: got, state: 'active' });
          } else {
            const i = Math.floor(rng() * open.length);
            const conn = open[i]!;
            if (conn.state === 'active' && roll < 0.8) {
              reference.scheduler.close(conn.addr);
              workers[conn.owner]!.scheduler.close(conn.addr);
              conn.state = 'inactive';
            } else {
              reference.scheduler.expire(conn.addr, conn.state);
              workers[conn.owner]!.scheduler.expire(conn.addr, conn.state);
              open.splice(i, 1);
            }
          }
        }
        for (const w of workers) w.replicas.catchUp();
        for (const [i, w] of workers.entries()) {
          assert.deepEqual(w.server.vs.dests(), reference.vs.dests(), `worker ${i}'s counters are every worker's`);
        }
      } finally {
        for (const c of channels) c.port1.close();
      }
    });
  }
}

test('the log: entries read back as written; a worker a whole ring behind leaves no room', () => {
  const buffer = new SharedArrayBuffer(opLogBytes(2));
  const a = new OpLog(buffer, 2, 0);
  const b = new OpLog(buffer, 2, 1);
  const entry = { kind: OpKind.ConnectAvoiding, listener: 5, state: 1, dest: 9, time: 1234.5, client: '[fd00::1]:40000', avoid: [2, 3] };
  a.lock();
  a.append(entry);
  a.unlock();
  const read = b.read(0, { kind: OpKind.Connect, listener: 0, state: 0, dest: 0, time: 0, client: undefined, avoid: [] });
  assert.deepEqual(read, entry);
  b.applied = 1;
  a.applied = 1;
  for (let i = 1; i < RING_ENTRIES; i++) a.append({ ...entry, client: undefined, avoid: [] });
  a.applied = RING_ENTRIES;
  assert.equal(a.hasRoom(), true, `worker 1 is ${RING_ENTRIES - 1} entries behind: room for one more`);
  a.append({ ...entry, client: undefined, avoid: [] });
  assert.equal(a.hasRoom(), false, 'worker 1 is a whole ring behind');
  b.applied = 2;
  assert.equal(a.hasRoom(), true);
});
