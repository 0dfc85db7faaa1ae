/**
 * `kpsim generate`: writes a realistic cluster of the size asked for (src/generate/cluster.ts)
 * into a new folder, as `kubectl get -o json` Lists: one file per kind, the big kinds split in
 * files of 20,000 objects, pods in their own folder. The same options and seed write the same
 * bytes.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { KpsimError } from '../errors.js';
import { type GeneratedFile, type GeneratedSummary, SCALABILITY_THRESHOLDS, generateCluster } from '../generate/cluster.js';
import { action, parseIntegerFlag, usageError } from './common.js';
import { summaryOf } from './command-table.js';

interface GenerateCommandOptions {
  nodes: string;
  pods: string;
  services: string;
  seed: string;
  output?: string;
  json?: boolean;
}

export function registerGenerate(program: Command): void {
  program
    .command('generate')
    .description(summaryOf('generate'))
    .option('--nodes <n>', 'nodes', String(SCALABILITY_THRESHOLDS.nodes))
    .option('--pods <n>', `pods (at most ${SCALABILITY_THRESHOLDS.podsPerNode} per node)`, String(SCALABILITY_THRESHOLDS.pods))
    .option('--services <n>', 'services', String(SCALABILITY_THRESHOLDS.services))
    .option('--seed <n>', 'random seed: the same seed writes the same files', '1')
    .option('-o, --output <dir>', 'a new (or empty) folder to write the manifests into')
    .option('--json', 'print the summary as JSON')
    .option('--debug', 'print stack traces for errors')
    .action(action(async (opts: GenerateCommandOptions) => {
      if (opts.output === undefined) throw new KpsimError('KPSIM_ERR_USAGE_MISSING_FLAG', '-o DIR is required: the folder to write the manifests into');
      const cluster = generateCluster({
        nodes: parseIntegerFlag('--nodes', opts.nodes, 1),
        pods: parseIntegerFlag('--pods', opts.pods, 0),
        services: parseIntegerFlag('--services', opts.services, 1),
        seed: parseIntegerFlag('--seed', opts.seed, 0, 0xffffffff),
      });
      await writeCluster(opts.output, cluster.files);
      process.stdout.write(opts.json ? `${JSON.stringify(cluster.summary)}\n` : formatSummary(opts.output, cluster.summary, cluster.files.length));
    }));
}

/** Write the files into `dir`, which must be new or empty. */
export async function writeCluster(dir: string, files: readonly GeneratedFile[]): Promise<void> {
  let existing: string[] = [];
  try {
    existing = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new KpsimError('KPSIM_ERR_MANIFEST_READ', `cannot read: ${(e as Error).message}`, { file: dir });
  }
  if (existing.length > 0) throw usageError('-o', `${dir} is not empty: give a new or empty folder (files left from another cluster would be read with this one)`);
  for (const file of files) {
    const path = join(dir, file.path);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, serialise(file));
  }
}

/** A `kubectl get -o json` List, one item per line (greppable), or the single object. */
function serialise(file: GeneratedFile): string {
  if (file.single) return `${JSON.stringify(file.objects[0], null, 2)}\n`;
  const items = file.objects.map((o) => JSON.stringify(o)).join(',\n');
  return `{"apiVersion":"v1","items":[\n${items}\n],"kind":"List","metadata":{"resourceVersion":""}}\n`;
}

function formatSummary(dir: string, s: GeneratedSummary, files: number): string {
  const types = Object.entries(s.byType).map(([type, n]) => `${n} ${type}`).join(', ');
  return [
    `wrote ${files} files to ${dir}`,
    `  ${s.nodes} nodes, ${s.pods} pods, ${s.services} services (${types})`,
    `  ${s.endpointSlices} EndpointSlices, ${s.endpoints} endpoints (${s.terminatingEndpoints} terminating)`,
    `  ${s.dualStackServices} dual-stack services, ${s.externalTrafficPolicyLocal} with externalTrafficPolicy Local, ${s.internalTrafficPolicyLocal} with internalTrafficPolicy Local`,
    `  largest: ${s.largestServices.map((l) => `${l.name} (${l.endpoints})`).join(', ')}`,
    '',
  ].join('\n');
}
