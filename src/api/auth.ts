/**
 * Bearer-token authentication for `kpsim serve --token-file`: every request must carry
 * `Authorization: Bearer <token>`, or it is answered 401 with a Kubernetes `Status`, as
 * kube-apiserver answers an unauthenticated client. Like kube-apiserver's public-info-viewer,
 * /version and the health checks stay open (the kubectl dispatcher reads /version first).
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { unauthorized } from './kube/status.js';

const OPEN_PATHS = new Set(['/version', '/healthz', '/livez', '/readyz', '/v1/healthz']);

function sameToken(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Adds the check to every route of `app` (call before the routes are registered). */
export function requireBearerToken(app: FastifyInstance, token: string): void {
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0]!;
    if (OPEN_PATHS.has(path)) return;
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (match && sameToken(match[1]!.trim(), token)) return;
    const status = unauthorized().status;
    await reply.status(401).type('application/json').send(status);
  });
}
