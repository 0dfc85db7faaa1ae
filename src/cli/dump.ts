/**
 * `kpsim dump`: what kpsim reads from a cluster (Services, EndpointSlices, Nodes, the
 * KubeProxyConfiguration), written as manifests to a folder, one file per kind, so that a live
 * cluster's state can be kept, shared in a bug report and replayed offline with `-f DIR`.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { KpsimError } from '../errors.js';
import type { ManifestObject } from '../manifest/load.js';
import { isObject } from '../model/fields.js';
import { type ClusterOptions, action, addClusterOptions, loadClusterObjects, printWarnings, usageError } from './common.js';
import { summaryOf } from './command-table.js';

interface DumpOptions extends ClusterOptions {
  output?: string;
}

/** Kind → file, in the order the files are written. */
const FILES: readonly { kind: string; file: string }[] = [
  { kind: 'Service', file: 'services.yaml' },
  { kind: 'EndpointSlice', file: 'endpointslices.yaml' },
  { kind: 'Endpoints', file: 'endpoints.yaml' },
  { kind: 'Node', file: 'nodes.yaml' },
  { kind: 'KubeProxyConfiguration', file: 'kube-proxy-config.yaml' },
];

function kindOf(object: ManifestObject): string {
  return isObject(object.doc) && typeof object.doc['kind'] === 'string' ? object.doc['kind'] : '';
}

export function registerDump(program: Command): void {
  const cmd = program.command('dump').description(summaryOf('dump'));
  addClusterOptions(cmd)
    .option('-o, --output <dir>', 'the folder to write (created when missing; files of the same names are replaced)')
    .action(action(async (opts: DumpOptions) => {
      if (opts.output === undefined) throw new KpsimError('KPSIM_ERR_USAGE_MISSING_FLAG', 'give the folder to write with -o DIR');
      if (opts.output.trim() === '') throw usageError('-o', 'is empty');
      const { objects, warnings } = await loadClusterObjects(opts);
      if (!opts.quiet) printWarnings(warnings);
      const dir = opts.output;
      const counts: string[] = [];
      try {
        await mkdir(dir, { recursive: true });
        for (const { kind, file } of FILES) {
          const docs = objects.filter((o) => kindOf(o) === kind).map((o) => stringify(o.doc));
          if (docs.length === 0) continue;
          // Written beside and renamed, so a failed dump never leaves half a file.
          const path = join(dir, file);
          await writeFile(`${path}.tmp`, docs.join('---\n'), 'utf8');
          await rename(`${path}.tmp`, path);
          counts.push(`${docs.length} ${kind}${docs.length === 1 ? '' : kind.endsWith('s') ? '' : 's'}`);
        }
      } catch (e) {
        throw new KpsimError('KPSIM_ERR_OUTPUT_WRITE', `cannot write: ${(e as Error).message}`, { file: dir });
      }
      process.stdout.write(`wrote ${counts.length > 0 ? counts.join(', ') : 'nothing (the cluster has none of the kinds kpsim reads)'} to ${dir}\n`);
    }));
}
