// elton serve: an HTTP gateway and cache node in front of a remote, until SIGINT or SIGTERM.
import { Flags } from '@oclif/core';
import chalk from 'chalk';
import { EltonCommand, EXIT_CODE_HELP } from '../src/cli/base.js';
import { DEFAULT_GATEWAY_PORT, serve, type ServeInfo } from '../src/app/lazy.js';
import type { GatewayStats } from '../src/lazy/gateway.js';

export default class Serve extends EltonCommand {
  static summary = 'Serve versions over HTTP, fetching lazily from a remote and caching (a cluster cache node, a CDN edge).';
  static description = `GET /NAME@V/PATH returns a file (Range, ETag = content id, cached as immutable) or a directory listing (HTML, or JSON with Accept: application/json); @latest is re-resolved every few seconds. Objects come from the remote on first use only, through the user cache, and concurrent requests share one fetch. Logs one line per request; stops on SIGINT or SIGTERM. See docs/lazy.md.\n\n${EXIT_CODE_HELP}`;
  static examples = [
    '<%= config.bin %> serve --remote http://master:3586',
    '<%= config.bin %> serve --remote s3://bucket/trees --listen 0.0.0.0:8080',
  ];
  static flags = {
    remote: Flags.string({ description: 'remote to serve (default: the current workspace\'s)' }),
    listen: Flags.string({ description: `HOST:PORT to listen on (default 127.0.0.1:${DEFAULT_GATEWAY_PORT}; port 0 picks a free one)` }),
  };

  async run(): Promise<ServeInfo & { stopped: string; stats: GatewayStats }> {
    const { flags } = await this.parse(Serve);
    const json = this.jsonEnabled();
    const { gateway, store, info } = await serve({
      remote: flags.remote, listen: flags.listen,
      onRequest: (r) => {
        const status = r.status >= 500 ? chalk.red(r.status) : r.status >= 400 ? chalk.yellow(r.status) : String(r.status);
        if (!json) process.stdout.write(`${r.time} ${r.client} ${r.method} ${r.path} ${status} ${r.ms.toFixed(1)}ms out=${r.bytesOut}${r.error ? ` error=${JSON.stringify(r.error)}` : ''}\n`);
        else if (r.error) process.stderr.write(JSON.stringify({ event: 'error', ...r }) + '\n');
      },
    }, await this.deps());
    if (json) process.stdout.write(JSON.stringify({ event: 'listening', ...info }) + '\n');
    else process.stdout.write(`elton gateway listening on ${info.url} (remote ${info.remote}, cache ${info.cache})\n`);
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    });
    await gateway.close();
    const stats = gateway.stats();
    await store.close();
    if (!json) process.stdout.write(`${signal}: stopped after ${stats.requests} requests; upstream ${stats.upstream.requests} requests, ${stats.upstream.bytesDown} bytes down\n`);
    return { ...info, stopped: signal, stats };
  }
}
