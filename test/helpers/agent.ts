/**
 * Running kpsim's agent in a test against kpsim's Kubernetes API (in the test's process, on a
 * loopback port): start it, wait for the sync that follows a change (by event, never by a
 * timer), and compare what the kernel holds with a full compile of the API's objects.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { ProxyAgent, type AgentOptions } from '../../src/agent/agent.js';
import type { SyncEvent } from '../../src/agent/proxier.js';
import { compileIptablesRules } from '../../src/iptables/compile.js';
import { renderRule } from '../../src/iptables/render.js';
import type { Cluster } from '../../src/model/types.js';
import { buildProxierState, resolveNode } from '../../src/tracker/proxier-state.js';
import type { Family } from '../../src/util/ip.js';

export function kubeConfigFor(url: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'kpsim', server: url, skipTLSVerify: true }], users: [{ name: 'test' }], contexts: [{ name: 'kpsim', cluster: 'kpsim', user: 'test' }], currentContext: 'kpsim' });
  return kc;
}

export interface TestAgent {
  readonly agent: ProxyAgent;
  readonly events: SyncEvent[];
  readonly log: string[];
  /** The first sync event after now that `matches`, or that happened already since `from`. */
  nextSync(matches?: (e: SyncEvent) => boolean, from?: number): Promise<SyncEvent>;
  /** The first log line from index `from` on that matches. */
  logged(pattern: RegExp, from: number): Promise<string>;
  stop(): Promise<void>;
}

/** An agent for the API at `url`, metrics and health on ephemeral ports, logging to a list. */
export async function startTestAgent(url: string, options: Partial<AgentOptions> & Pick<AgentOptions, 'mode'>): Promise<TestAgent> {
  const events: SyncEvent[] = [];
  const log: string[] = [];
  const logWaiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  const addLog = (line: string): void => {
    log.push(line);
    for (const w of [...logWaiters]) {
      if (!w.pattern.test(line)) continue;
      logWaiters.splice(logWaiters.indexOf(w), 1);
      w.resolve(line);
    }
  };
  const waiters: { from: number; matches: (e: SyncEvent) => boolean; resolve: (e: SyncEvent) => void }[] = [];
  const onSync = (e: SyncEvent): void => {
    events.push(e);
    for (const w of [...waiters]) {
      if (events.length - 1 >= w.from && w.matches(e)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  };
  const agent = await ProxyAgent.start({
    source: { kubeConfig: kubeConfigFor(url), server: url },
    metricsBindAddress: '127.0.0.1:0',
    healthzBindAddress: '127.0.0.1:0',
    processMetrics: false,
    log: addLog,
    onSync,
    ...options,
  });
  return {
    agent,
    events,
    log,
    nextSync(matches = () => true, from = events.length) {
      const done = events.slice(from).find(matches);
      if (done !== undefined) return Promise.resolve(done);
      return new Promise((resolve) => waiters.push({ from, matches, resolve }));
    },
    logged(pattern, from) {
      const done = log.slice(from).find((l) => pattern.test(l));
      if (done !== undefined) return Promise.resolve(done);
      return new Promise((resolve) => logWaiters.push({ pattern, resolve }));
    },
    stop: () => agent.stop(),
  };
}

/** "table chain" → rule lines, of iptables-save text (kube-proxy's form). */
export function chainsOfSave(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let table = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1);
    else if (line.startsWith(':')) out.set(`${table} ${line.slice(1).split(' ')[0]}`, []);
    else if (line.startsWith('-A ')) out.get(`${table} ${line.split(' ')[1]}`)?.push(line);
  }
  return out;
}

/** "table chain" → rule lines of a full compile of `cluster` for `node`. */
export function compiledChains(cluster: Cluster, node: string, family: Family): Map<string, string[]> {
  const state = buildProxierState(cluster, resolveNode(cluster, { node }), family);
  const out = new Map<string, string[]>();
  for (const table of compileIptablesRules(state).tables.values()) {
    for (const chain of table.chains.values()) out.set(`${table.name} ${chain.name}`, chain.rules.map((r) => renderRule(r)));
  }
  return out;
}

/** Chains missing, stale, or with other rules: empty when both hold the same. */
export function chainDifferences(want: Map<string, string[]>, got: Map<string, string[]>): string[] {
  const out: string[] = [];
  for (const [chain, rules] of want) {
    const have = got.get(chain);
    if (have === undefined) out.push(`missing chain ${chain}`);
    else if (have.join('\n') !== rules.join('\n')) out.push(`chain ${chain} differs:\n  want ${rules.join('\n       ')}\n  got  ${have.join('\n       ')}`);
  }
  for (const chain of got.keys()) if (!want.has(chain)) out.push(`stale chain ${chain}`);
  return out;
}

/** The text of a sync's state artifact. */
export function stateText(event: SyncEvent, name: string): string {
  const artifact = event.state().find((a) => a.name === name);
  if (artifact === undefined) throw new Error(`the sync left no ${name}`);
  return artifact.text();
}
