/**
 * kpsim's commands by name: what `kpsim --help` lists, and how to load each. main.ts imports a
 * command's module only when that command runs, so `kpsim --version` or `kpsim trace` do not pay
 * for fastify, autocannon and the proxy (a script that calls `kpsim trace` per flow pays the
 * start-up every time). This module stays light: commander's types only.
 */
import type { Command } from 'commander';

export interface CommandEntry {
  readonly name: string;
  /** The one line `kpsim --help` prints (the command's own --help prints the same). */
  readonly summary: string;
  /** Loads the command's module and returns its register function. */
  readonly load: () => Promise<(program: Command) => void>;
}

export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'demo',
    summary: 'compile a cluster, trace a packet per kind of service, and compare the proxy modes (what npm start runs)',
    load: async () => (await import('./demo.js')).registerDemo,
  },
  {
    name: 'compile',
    summary: 'print the rules kube-proxy writes on one node: iptables-save text, or the IPVS table as ipvsadm -Ln shows it',
    load: async () => (await import('./compile.js')).registerCompile,
  },
  {
    name: 'trace',
    summary: 'walk a packet through a node\'s rules: chains and rules crossed, verdict, reachable endpoints, masquerading',
    load: async () => (await import('./trace.js')).registerTrace,
  },
  {
    name: 'simulate',
    summary: 'replay seeded connections to a service through each mode (iptables and nftables: the rules walked; IPVS: each scheduler), and compare how evenly they spread',
    load: async () => (await import('./simulate.js')).registerSimulate,
  },
  {
    name: 'up',
    summary: 'start backend pods for the cluster\'s endpoints and a userspace proxy for its services, on loopback, until interrupted',
    load: async () => (await import('./up.js')).registerUp,
  },
  {
    name: 'load',
    summary: 'send HTTP load to the cluster\'s backend pods, through the userspace proxy (loopback) or a mode\'s rules in a real kernel (kpsim lab), and report req/s, latency, errors and the per-endpoint spread',
    load: async () => (await import('./load.js')).registerLoad,
  },
  {
    name: 'compare',
    summary: 'compare direct-to-pod, the userspace proxy (real bytes on loopback), the simulated iptables, IPVS and nftables modes and, with --kernel, their rules in a real kernel, on one service: req/s, added latency, spread over endpoints, decision cost',
    load: async () => (await import('./compare.js')).registerCompare,
  },
  {
    name: 'lab',
    summary: 'run the compiled rules in the real kernel (root): network namespaces for the node, a client and the endpoints\' pods; up, status, down, sync-bench',
    load: async () => (await import('./lab.js')).registerLab,
  },
  {
    name: 'nodes',
    summary: 'every node\'s view in one table: rules or virtual servers per mode, local endpoints, Local-policy services without local endpoints, health check answers',
    load: async () => (await import('./nodes.js')).registerNodes,
  },
  {
    name: 'diff-nodes',
    summary: 'how two nodes\' rules differ in one mode, and why: their addresses, zones and local endpoints',
    load: async () => (await import('./diff-nodes.js')).registerDiffNodes,
  },
  {
    name: 'generate',
    summary: 'write a realistic cluster of the size asked for (up to Kubernetes\' 5,000 nodes, 150,000 pods, 10,000 services) as manifests the API server would store',
    load: async () => (await import('./generate.js')).registerGenerate,
  },
  {
    name: 'serve',
    summary: 'serve the JSON API (cluster, rules, packet traces), a web page that shows them, and the Kubernetes API (kubectl, client-node) on loopback',
    load: async () => (await import('./serve.js')).registerServe,
  },
  {
    name: 'agent',
    summary: 'run kube-proxy\'s sync loop on one node against a live API server (iptables, ipvs or userspace mode): partial syncs, kube-proxy\'s metrics and health checks, each sync\'s rules in --rules-dir',
    load: async () => (await import('./agent.js')).registerAgent,
  },
  {
    name: 'dump',
    summary: 'write what kpsim reads from a cluster (a live one: --kubeconfig, --context, --server) as manifests, replayable with -f DIR',
    load: async () => (await import('./dump.js')).registerDump,
  },
];

/** The summary of a command, for its own `.description(...)`. */
export function summaryOf(name: string): string {
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) throw new Error(`no command ${name} in the command table`);
  return entry.summary;
}
