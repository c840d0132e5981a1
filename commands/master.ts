// elton master: run the cluster master (HTTP server) until SIGINT or SIGTERM.
import { Flags } from '@oclif/core';
import chalk from 'chalk';
import { EltonCommand, EXIT_CODE_HELP } from '../src/cli/base.js';
import { runMaster, type MasterInfo } from '../src/app/master.js';
import { DEFAULT_PORT } from '../src/remote/wire.js';

export default class Master extends EltonCommand {
  static summary = 'Run a cluster master: the HTTP remote that stores objects and issues versions.';
  static description = `Listens on 127.0.0.1:${DEFAULT_PORT} unless --listen says otherwise, logs one line per request to stdout, and stops gracefully on SIGINT or SIGTERM. Workspaces use it with \`elton init --remote http://HOST:PORT\` or \`elton clone http://HOST:PORT NAME@latest DIR\`. See docs/master.md.\n\n${EXIT_CODE_HELP}`;
  static examples = [
    '<%= config.bin %> master --data /srv/elton',
    '<%= config.bin %> master --data /srv/elton --listen 0.0.0.0:3586 --token-file /etc/elton/tokens',
    '<%= config.bin %> master --data /srv/elton --listen :443 --token-file tokens --tls-cert cert.pem --tls-key key.pem',
    '<%= config.bin %> master --data /srv/elton --replicate-to s3://oregon-backup/elton',
    '<%= config.bin %> master --data /srv/elton --name tokyo --peer oregon=https://oregon.example:3586',
    '<%= config.bin %> master --data /srv/photos --encrypted --token-file tokens',
  ];
  static flags = {
    data: Flags.string({ description: 'data directory (created if absent): objects in store/, metadata in meta/', required: true }),
    listen: Flags.string({ description: `HOST:PORT to listen on (default 127.0.0.1:${DEFAULT_PORT}; port 0 picks a free one)` }),
    'token-file': Flags.string({ description: 'file of bearer tokens, one "TOKEN SCOPES [NAME]" per line; without it, no auth' }),
    'tls-cert': Flags.string({ description: 'PEM certificate (chain) for HTTPS' }),
    'tls-key': Flags.string({ description: 'PEM private key for HTTPS' }),
    name: Flags.string({ description: 'this master\'s name in a federation (recorded in the data directory; never changes): trees named NAME~THIS are homed here' }),
    peer: Flags.string({ description: 'a peer master, NAME=URL (repeatable); its token in ELTON_PEER_TOKEN_NAME or ELTON_PEER_TOKEN', multiple: true }),
    'peers-file': Flags.string({ description: 'file of peers, one "NAME URL [token-file=PATH] [ca-file=PATH]" per line' }),
    'latest-ttl': Flags.integer({ description: 'seconds a home\'s answer to NAME@latest is reused for trees homed on a peer (default 2)', min: 0 }),
    encrypted: Flags.boolean({ description: 'hold an encrypted repository as opaque ciphertext, without its key (a new --data is created encrypted; an existing one must match); no peers' }),
    'replicate-to': Flags.string({ description: 'copy every version to this remote (master URL, s3://BUCKET/PREFIX or path) in the background; token in ELTON_REPLICATE_TOKEN' }),
  };

  async run(): Promise<MasterInfo & { stopped: string }> {
    const { flags } = await this.parse(Master);
    const json = this.jsonEnabled();
    const { master, info } = await runMaster({
      data: flags.data, listen: flags.listen, tokenFile: flags['token-file'], tlsCert: flags['tls-cert'], tlsKey: flags['tls-key'], replicateTo: flags['replicate-to'],
      name: flags.name, peer: flags.peer, peersFile: flags['peers-file'], latestTtl: flags['latest-ttl'], encrypted: flags.encrypted,
      onPeerEvent: (e) => {
        if (json) return void process.stdout.write(JSON.stringify({ event: 'peer', ...e }) + '\n');
        process.stdout.write(`${new Date().toISOString()} ${chalk.yellow(`peer ${e.peer}: ${e.code}: ${e.message}`)}\n`);
      },
      onReplication: (e) => {
        if (json) return void process.stdout.write(JSON.stringify({ event: 'replication', ...e }) + '\n');
        const line = e.type === 'copied'
          ? `replication: copied ${e.versions.join(', ')} (${e.objects} objects, ${e.bytes} bytes) in ${e.seconds.toFixed(1)} s`
          : chalk.yellow(`replication: ${e.code}: ${e.message}; retrying in ${e.retryInSeconds} s`);
        process.stdout.write(`${new Date().toISOString()} ${line}\n`);
      },
      onRequest: (r) => {
        if (json) return;
        const status = r.status >= 500 ? chalk.red(r.status) : r.status >= 400 ? chalk.yellow(r.status) : String(r.status);
        process.stdout.write(`${r.time} ${r.client} ${r.who}${r.via ? ` peer:${r.via}` : ''} ${r.method} ${r.path} ${status} ${r.ms.toFixed(1)}ms in=${r.bytesIn} out=${r.bytesOut}\n`);
      },
    }, await this.deps());
    if (json) process.stdout.write(JSON.stringify({ event: 'listening', ...info }) + '\n');
    else process.stdout.write(`elton master listening on ${info.url} (data ${info.data}, auth ${info.auth === 'tokens' ? `${info.tokens} token(s)` : 'off'}${info.tls ? ', TLS' : ''}${info.encrypted ? ', encrypted' : ''}${info.replicateTo ? `, replicating to ${info.replicateTo}` : ''}${info.name ? `, name ${info.name}, ${info.peers.length} peer(s)` : ''})\n`);
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    });
    if (!json) process.stdout.write(`${signal}: finishing requests in flight, then stopping\n`);
    await master.close();
    if (!json) process.stdout.write('stopped\n');
    return { ...info, stopped: signal };
  }
}
