/**
 * Binding a loopback address as the address map planned it: the planned port, else an ephemeral
 * one when that port is taken or privileged, with the reason recorded (address-map.ts explains
 * the fallback). Shared by the TCP and UDP listeners and the backend pods.
 */
import type { BoundPort, HostPort } from './address-map.js';

/** `bind` binds host and port and returns the port it got; `fail` makes the error for a bind that cannot fall back. */
export async function bindWithFallback(
  planned: HostPort,
  bind: (host: string, port: number) => Promise<number>,
  fail: (port: number, cause: unknown) => Error,
): Promise<BoundPort> {
  const { address, port } = planned;
  const ephemeral = async (): Promise<number> => {
    try {
      return await bind(address, 0);
    } catch (e) {
      throw fail(0, e);
    }
  };
  if (port === 0) return { port: await ephemeral() };
  try {
    return { port: await bind(address, port) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EADDRINUSE' && code !== 'EACCES') throw fail(port, e);
    const reason = code === 'EACCES' ? `no permission to bind port ${port}` : `port ${port} is in use`;
    return { port: await ephemeral(), fallback: reason };
  }
}
