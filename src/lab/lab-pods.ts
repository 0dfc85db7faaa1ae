/**
 * The lab's pods process (started by pods.ts through its socket factory): serves every endpoint
 * with kpsim's backend pod (src/proxy/backends.ts: HTTP over TCP, and the UDP responder for a UDP
 * port) on the descriptors bound for it in its pod's namespace, and answers GET /stats on its
 * control socket until SIGTERM.
 *
 *   KPSIM_LAB_FDS=5,6,7 node lab-pods.js --spec FILE --lab MARKER
 */
import { readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import type { Protocol } from '../model/types.js';
import { Backend } from '../proxy/backends.js';
import { familyOfValidIP } from '../util/ip.js';
import type { PodSocket, PodsSpec, PodsStats } from './pods.js';

const { values } = parseArgs({ options: { spec: { type: 'string' }, lab: { type: 'string' } } });
const spec = JSON.parse(readFileSync(values.spec!, 'utf8')) as PodsSpec;
const fds = (process.env['KPSIM_LAB_FDS'] ?? '').split(',').filter((s) => s !== '').map(Number);
if (fds.length !== spec.sockets.length) throw new Error(`lab-pods: ${fds.length} descriptors for ${spec.sockets.length} sockets`);

/** One backend per endpoint: its TCP and UDP sockets (an endpoint can serve both, as DNS does). */
const byEndpoint = new Map<string, { socket: PodSocket; fds: Map<Protocol, number>; spns: Set<string> }>();
spec.sockets.forEach((s, i) => {
  const entry = byEndpoint.get(s.endpoint) ?? { socket: s, fds: new Map<Protocol, number>(), spns: new Set<string>() };
  entry.fds.set(s.protocol, fds[i]!);
  for (const spn of s.spns) entry.spns.add(spn);
  byEndpoint.set(s.endpoint, entry);
});

const backends = await Promise.all([...byEndpoint.values()].map(async ({ socket: s, fds: own, spns }, i) => {
  const protocols = (['TCP', 'UDP'] as const).filter((p) => own.has(p));
  const backend = new Backend({
    endpoint: s.endpoint, ip: s.ip, port: s.port, family: familyOfValidIP(s.ip), ...(s.podName !== undefined ? { podName: s.podName } : {}),
    loopback: { address: s.ip, port: s.port }, spns: [...spns], protocols,
    ...(own.has('TCP') ? { listenFd: own.get('TCP')! } : {}),
    ...(own.has('UDP') ? { udpListenFd: own.get('UDP')!, udpLoopback: { address: s.ip, port: s.port } } : {}),
  }, {}, {}, i + 1);
  await backend.start();
  return backend;
}));

rmSync(spec.controlSocket, { force: true });
const control = createServer((req, res) => {
  if (req.url !== '/stats') {
    res.writeHead(404).end();
    return;
  }
  const stats: PodsStats = { backends: backends.map((b) => b.stats()) };
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
});
const count = (p: Protocol): number => [...byEndpoint.values()].filter((e) => e.fds.has(p)).length;
control.listen(spec.controlSocket, () => process.stdout.write(`kpsim lab pods (${values.lab}): ${count('TCP')} TCP and ${count('UDP')} UDP endpoints served\n`));

const stop = (): void => {
  control.close();
  void Promise.all(backends.map((b) => b.close())).finally(() => {
    rmSync(spec.controlSocket, { force: true });
    process.exit(0);
  });
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
