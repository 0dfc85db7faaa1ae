/** Real servers on loopback for the load tests: fastify backends, raw sockets that misbehave, UDP responders. */
import dgram from 'node:dgram';
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { udpReply } from '../../src/proxy/udp-reply.js';

export interface CountingBackend {
  readonly url: string;
  readonly port: number;
  /** Requests answered per endpoint name, as the server counted them. */
  readonly answered: Map<string, number>;
  /** TCP connections the server accepted. */
  connections(): number;
  close(): Promise<void>;
}

export interface BackendBehaviour {
  /** The endpoint names answered in turn, one per request ("" sends no kpsim headers). */
  endpoints: readonly string[];
  /** The status for the n-th request (0-based); 200 by default. */
  status?: (n: number) => number;
}

/** A fastify server that stamps x-kpsim-* headers the way kpsim's backend pods do. */
export async function startCountingBackend(behaviour: BackendBehaviour): Promise<CountingBackend> {
  const app: FastifyInstance = Fastify({ logger: false });
  const answered = new Map<string, number>();
  let accepted = 0;
  let n = 0;
  app.server.on('connection', () => accepted++);
  app.get('/', async (_request, reply) => {
    const i = n++;
    const endpoint = behaviour.endpoints[i % behaviour.endpoints.length]!;
    answered.set(endpoint, (answered.get(endpoint) ?? 0) + 1);
    if (endpoint !== '') reply.header('x-kpsim-endpoint', endpoint).header('x-kpsim-pod', `pod-${endpoint}`);
    reply.code(behaviour.status?.(i) ?? 200);
    return 'ok\n';
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/`, port, answered, connections: () => accepted, close: () => app.close() };
}

export interface RawServer {
  readonly url: string;
  close(): Promise<void>;
}

/** A TCP server that does `onConnection` with every socket (never answer, reset, ...). */
export async function startRawServer(onConnection: (socket: Socket) => void): Promise<RawServer> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/** A loopback port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface UdpResponder {
  readonly url: string;
  /** Datagrams it received. */
  received(): number;
  close(): Promise<void>;
}

/** A UDP responder that answers as kpsim's pods do, except every `dropEvery`th datagram, which it drops. */
export async function startUdpResponder(options: { endpoint: string; pod?: string; dropEvery?: number }): Promise<UdpResponder> {
  const socket = dgram.createSocket('udp4');
  let received = 0;
  socket.on('message', (datagram, from) => {
    received++;
    if (options.dropEvery !== undefined && received % options.dropEvery === 0) return;
    socket.send(udpReply(datagram, { pod: options.pod ?? `pod-${options.endpoint}`, endpoint: options.endpoint }), from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    url: `udp://127.0.0.1:${socket.address().port}`,
    received: () => received,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

/** A loopback UDP port nothing listens on (bound, then released). */
export async function closedUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}
