/**
 * `kpsim nodes`' work, in one thread's share: load the cluster, then summarise every node whose
 * position in the input is this share's (position modulo the share count), reporting as it
 * goes. Each thread keeps its own ClusterView, so it shares the node-independent work across
 * its nodes and holds one node's own rules at a time.
 */
import { isKpsimError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { ClusterView } from '../cluster/cluster-view.js';
import { HealthChecks } from '../cluster/health-check.js';
import { type NodeSummary, summarizeNode } from '../cluster/node-summary.js';
import type { Warning } from '../model/types.js';
import type { ModeCompileOptions, RulesMode } from '../node/mode-driver.js';
import type { ManifestObject } from '../manifest/load.js';
import { type ClusterOptions, clusterFromReadObjects, loadClusterWithOverrides } from './common.js';

export interface NodesJob {
  /** Plain data only: the job crosses to worker threads. */
  readonly cluster: ClusterOptions;
  /**
   * The objects, read once by the calling thread, when the source can be read only once or is
   * better read once: standard input, a live cluster. Else every thread reads the files itself.
   */
  readonly read?: { readonly objects: ManifestObject[]; readonly warnings: Warning[] };
  readonly modes: readonly RulesMode[];
  readonly compile: ModeCompileOptions;
  readonly share: { readonly index: number; readonly count: number };
}

export type NodesMessage =
  | { readonly type: 'cluster'; readonly nodes: readonly string[]; readonly warnings: readonly Warning[] }
  | { readonly type: 'summaries'; readonly items: readonly { readonly index: number; readonly summary: NodeSummary }[] }
  | { readonly type: 'done' }
  | { readonly type: 'error'; readonly code?: ErrorCode; readonly message: string; readonly stack?: string };

/** Summaries are sent in batches of this many (a message per node would cost more than the node). */
const BATCH = 50;

export async function runNodesJob(job: NodesJob, post: (message: NodesMessage) => void): Promise<void> {
  try {
    const cluster = job.read !== undefined ? clusterFromReadObjects(job.read, job.cluster) : await loadClusterWithOverrides(job.cluster);
    // Every share reads the same input; the first one reports it.
    if (job.share.index === 0) post({ type: 'cluster', nodes: cluster.nodes.map((n) => n.name), warnings: cluster.warnings });
    const view = new ClusterView(cluster);
    const healthChecks = new HealthChecks(cluster);
    let items: { index: number; summary: NodeSummary }[] = [];
    cluster.nodes.forEach((node, index) => {
      if (index % job.share.count !== job.share.index) return;
      items.push({ index, summary: summarizeNode(view, node.name, healthChecks, { modes: job.modes, compile: job.compile }) });
      if (items.length >= BATCH) {
        post({ type: 'summaries', items });
        items = [];
      }
    });
    if (items.length > 0) post({ type: 'summaries', items });
    post({ type: 'done' });
  } catch (e) {
    if (isKpsimError(e)) post({ type: 'error', code: e.code, message: e.message });
    else post({ type: 'error', message: e instanceof Error ? e.message : String(e), ...(e instanceof Error && e.stack !== undefined ? { stack: e.stack } : {}) });
  }
}
