// Listening and graceful closing, shared by the master and the gateway.

import type http from 'node:http';

/** Listens and returns the server's base URL (IPv6 hosts in brackets). */
export async function listen(server: http.Server, host: string, port: number, scheme: 'http' | 'https'): Promise<string> {
  // Longer than any client's think time between the requests of one command, so a kept-alive socket is not cut under it.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 70_000;
  server.requestTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  const addr = server.address() as { address: string; port: number };
  const shown = addr.address.includes(':') ? `[${addr.address}]` : addr.address;
  return `${scheme}://${shown}:${addr.port}`;
}

/** Stops accepting, lets requests in flight finish for `graceMs`, then cuts what is left. */
export async function closeGracefully(server: http.Server, graceMs: number): Promise<void> {
  const done = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const grace = setTimeout(() => server.closeAllConnections(), graceMs);
  await done;
  clearTimeout(grace);
}
