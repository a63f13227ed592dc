// The node agent's loop: read the mounted configuration, plan, apply; again whenever the mounted
// ConfigMap changes (the kubelet swaps its `..data` symlink) and on a fixed interval, so a file
// someone changed or removed by hand comes back. A configuration that cannot be read changes
// nothing on the node (it never reads as "clean up"): only cleanup mode removes.
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import client from 'prom-client';
import type winston from 'winston';
import { systemClock, type Clock } from '../runtime/clock.ts';
import { configKeys, parseNodeAccessConfig, type NodeAccessConfig } from '../model/node-access-config.ts';
import { applyPlan, readNodeState } from './node-fs.ts';
import { planNode, type Desired } from './plan.ts';
import { serialWithRerun, type Serial } from '../util/serial.ts';

export interface AgentOptions {
  /** `<namespace>/<name>` of the Registry this agent serves. */
  registry: string;
  /** The mounted ConfigMap (config.json, ca.crt); unused in cleanup mode. */
  configDir?: string;
  /** certs.d as this process sees it (where it writes). */
  certsDir: string;
  /** certs.d as containerd sees it (what hosts.toml names). */
  hostCertsDir: string;
  /** The node's hosts file as this process sees it; undefined: leave name resolution alone. */
  hostsFile?: string;
  /** Remove everything this agent wrote, and write nothing. */
  cleanup: boolean;
  intervalMs: number;
  /** Where the time comes from (the last-success gauge); the system's by default. */
  clock?: Pick<Clock, 'now'>;
}

export interface SyncResult {
  ok: boolean;
  written: number;
  removed: number;
  conflicts: { folder: string; reason: string }[];
  error?: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export class NodeAgent {
  readonly metrics = new client.Registry();
  private readonly options: AgentOptions;
  private readonly logger: winston.Logger;
  private last: SyncResult | undefined;
  /** One pass; concurrent calls share it, and a call during a pass schedules one more. */
  readonly sync: Serial<SyncResult> = serialWithRerun(() => this.pass());
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private hostsWatcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private readonly syncs: client.Counter<'result'>;
  private readonly changes: client.Counter<'change'>;
  private readonly conflicts: client.Gauge;
  private readonly inSync: client.Gauge;
  private readonly lastSuccess: client.Gauge;

  constructor(options: AgentOptions, deps: { logger: winston.Logger }) {
    this.options = options;
    this.logger = deps.logger;
    const registers = [this.metrics];
    this.syncs = new client.Counter({
      name: 'berth_node_agent_syncs_total',
      help: 'Passes over the node files, by result (ok, error).',
      labelNames: ['result'],
      registers,
    });
    this.changes = new client.Counter({
      name: 'berth_node_agent_file_changes_total',
      help: 'Files written or removed on the node.',
      labelNames: ['change'],
      registers,
    });
    this.conflicts = new client.Gauge({
      name: 'berth_node_agent_conflicts',
      help: 'certs.d folders the agent should write but that are not its own (left alone).',
      registers,
    });
    this.inSync = new client.Gauge({
      name: 'berth_node_agent_in_sync',
      help: '1 when the node files match the configuration (or, in cleanup mode, are gone).',
      registers,
    });
    this.lastSuccess = new client.Gauge({
      name: 'berth_node_agent_last_success_timestamp_seconds',
      help: 'When the last pass succeeded.',
      registers,
    });
    client.collectDefaultMetrics({ register: this.metrics });
  }

  /** The result of the last pass; ready means the node is as wanted. */
  get status(): SyncResult | undefined {
    return this.last;
  }

  get ready(): boolean {
    return !!this.last?.ok && this.last.conflicts.length === 0;
  }

  private async desired(): Promise<Desired> {
    const base: Desired = { registry: this.options.registry, hostCertsDir: this.options.hostCertsDir };
    if (this.options.cleanup) return base;
    const dir = this.options.configDir;
    if (!dir) throw new ConfigError('no configuration folder');
    let text: string;
    try {
      text = await readFile(path.join(dir, configKeys.config), 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read ${configKeys.config}: ${(err as Error).message}`);
    }
    const parsed = parseNodeAccessConfig(text);
    if (!parsed.ok) throw new ConfigError(parsed.error);
    const config: NodeAccessConfig = parsed.value;
    if (config.registry !== this.options.registry)
      throw new ConfigError(
        `the configuration is for Registry ${config.registry}, not ${this.options.registry}`,
      );
    let caPem: string | undefined;
    try {
      caPem = await readFile(path.join(dir, configKeys.ca), 'utf8');
    } catch {
      caPem = undefined; // no CA: TLS is disabled
    }
    return { ...base, config, ...(caPem?.trim() ? { caPem } : {}) };
  }

  private async pass(): Promise<SyncResult> {
    let result: SyncResult;
    try {
      const desired = await this.desired();
      const state = await readNodeState(this.options.certsDir, this.options.hostsFile);
      const plan = planNode(desired, state);
      const outcome = await applyPlan(this.options.certsDir, this.options.hostsFile, plan);
      result = { ok: true, written: outcome.written, removed: outcome.removed, conflicts: plan.conflicts };
      if (outcome.written || outcome.removed)
        this.logger.info('updated the node files', {
          event: 'node.updated',
          written: outcome.written,
          removed: outcome.removed,
          hostsWrite: outcome.hostsWrite,
          cleanup: this.options.cleanup,
        });
      for (const c of plan.conflicts)
        if (!this.last?.conflicts.some((p) => p.folder === c.folder))
          this.logger.warn('certs.d folder is not berth’s: left alone', { event: 'node.conflict', ...c });
      this.changes.inc({ change: 'written' }, outcome.written);
      this.changes.inc({ change: 'removed' }, outcome.removed);
      this.syncs.inc({ result: 'ok' });
      this.lastSuccess.set((this.options.clock ?? systemClock).now() / 1000);
    } catch (err) {
      const error = (err as Error).message;
      result = { ok: false, written: 0, removed: 0, conflicts: [], error };
      if (this.last?.error !== error) this.logger.error('sync failed', { event: 'node.failed', error });
      this.syncs.inc({ result: 'error' });
    }
    this.conflicts.set(result.conflicts.length);
    this.last = result;
    this.inSync.set(this.ready ? 1 : 0);
    return result;
  }

  /** Syncs now, then on configuration changes and every interval, until stop(). */
  async start(): Promise<void> {
    await this.sync();
    this.timer = setInterval(() => void this.sync(), this.options.intervalMs);
    if (!this.options.cleanup && this.options.configDir) {
      try {
        this.watcher = watch(this.options.configDir, () => this.syncSoon());
      } catch (err) {
        this.logger.warn('cannot watch the configuration folder; relying on the interval', {
          error: (err as Error).message,
        });
      }
    }
    if (!this.options.cleanup) this.watchHostsFile();
  }

  private syncSoon(): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.sync(), 200);
  }

  /**
   * The hosts file is shared: the agents of other Registries and other tools rewrite it in place,
   * and a rewrite made from an older read drops this agent's block. Watching it puts the block
   * back within a moment instead of at the next interval. A file replaced by a rename is watched
   * again under its new inode.
   */
  private watchHostsFile(): void {
    const file = this.options.hostsFile;
    if (!file || this.stopped) return;
    try {
      this.hostsWatcher = watch(file, (event) => {
        this.syncSoon();
        if (event === 'rename') {
          this.hostsWatcher?.close();
          setTimeout(() => this.watchHostsFile(), 250).unref();
        }
      });
    } catch {
      // not there yet (the next sync writes it) or not watchable: the interval still repairs it
      setTimeout(() => this.watchHostsFile(), this.options.intervalMs).unref();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.debounce);
    this.watcher?.close();
    this.hostsWatcher?.close();
    await this.sync.idle();
  }

  /** /healthz (the loop runs), /readyz (the node is as wanted), /metrics. */
  handler(): http.RequestListener {
    return (req, res) => {
      const url = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405).end();
        return;
      }
      if (url === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else if (url === '/readyz') {
        const s = this.last;
        const body = !s
          ? 'not synced yet\n'
          : s.error
            ? `sync failed: ${s.error}\n`
            : s.conflicts.length
              ? `conflicts: ${s.conflicts.map((c) => `${c.folder} (${c.reason})`).join('; ')}\n`
              : this.options.cleanup
                ? 'cleaned up\n'
                : 'in sync\n';
        res.writeHead(this.ready ? 200 : 503, { 'content-type': 'text/plain' }).end(body);
      } else if (url === '/metrics') {
        this.metrics
          .metrics()
          .then((text) => res.writeHead(200, { 'content-type': this.metrics.contentType }).end(text))
          .catch(() => res.writeHead(500).end());
      } else {
        res.writeHead(404).end();
      }
    };
  }
}
