/**
 * The lab's pods process (started by pods.ts through its socket factory): serves every endpoint
 * on the descriptor bound for it in its pod's namespace, TCP with kpsim's backend pod server and
 * UDP with a one-line responder, and answers GET /stats on its control socket until SIGTERM.
 *
 *   KPSIM_LAB_FDS=5,6,7 node lab-pods.js --spec FILE --lab MARKER
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { Backend } from '../proxy/backends.js';
import type { PodSocket, PodsSpec, PodsStats, UdpStats } from './pods.js';

const { values } = parseArgs({ options: { spec: { type: 'string' }, lab: { type: 'string' } } });
const spec = JSON.parse(readFileSync(values.spec!, 'utf8')) as PodsSpec;
const fds = (process.env['KPSIM_LAB_FDS'] ?? '').split(',').filter((s) => s !== '').map(Number);
if (fds.length !== spec.sockets.length) throw new Error(`lab-pods: ${fds.length} descriptors for ${spec.sockets.length} sockets`);

const backends: Backend[] = [];
const udp: { socket: UdpSocket; stats: { -readonly [K in keyof UdpStats]: UdpStats[K] } }[] = [];

function udpResponder(s: PodSocket, fd: number): void {
  const socket = createSocket(s.ip.includes(':') ? 'udp6' : 'udp4');
  const stats = { endpoint: s.endpoint, ...(s.podName !== undefined ? { podName: s.podName } : {}), datagrams: 0 };
  socket.on('message', (_msg, peer) => {
    stats.datagrams++;
    socket.send(`${JSON.stringify({ pod: s.podName ?? '', endpoint: s.endpoint, peer: `${peer.address}:${peer.port}` })}\n`, peer.port, peer.address);
  });
  socket.on('error', () => undefined);
  socket.bind({ fd });
  udp.push({ socket, stats });
}

await Promise.all(spec.sockets.map(async (s, i) => {
  const fd = fds[i]!;
  if (s.protocol === 'UDP') {
    udpResponder(s, fd);
    return;
  }
  const family = s.ip.includes(':') ? 6 : 4;
  const backend = new Backend({
    endpoint: s.endpoint, ip: s.ip, port: s.port, family, ...(s.podName !== undefined ? { podName: s.podName } : {}),
    loopback: { address: s.ip, port: s.port }, spns: s.spns, listenFd: fd,
  }, {}, {}, i + 1);
  await backend.start();
  backends.push(backend);
}));

rmSync(spec.controlSocket, { force: true });
const control = createServer((req, res) => {
  if (req.url !== '/stats') {
    res.writeHead(404).end();
    return;
  }
  const stats: PodsStats = { backends: backends.map((b) => b.stats()), udp: udp.map((u) => ({ ...u.stats })) };
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
});
control.listen(spec.controlSocket, () => process.stdout.write(`kpsim lab pods (${values.lab}): ${backends.length} TCP and ${udp.length} UDP endpoints served\n`));

const stop = (): void => {
  control.close();
  for (const u of udp) u.socket.close();
  void Promise.all(backends.map((b) => b.close())).finally(() => {
    rmSync(spec.controlSocket, { force: true });
    process.exit(0);
  });
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
