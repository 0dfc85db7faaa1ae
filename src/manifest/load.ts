/**
 * The only place that reads input files: manifests from files and folders (recursively: *.yaml,
 * *.yml, *.json) plus the --config file, into one validated Cluster; and, with `readInputFile`,
 * the CLI's other inputs (iptables-save dumps, --flows).
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { KpsimError, aggregateErrors } from '../errors.js';
import { DEFAULT_NODE_PORT_RANGE, type NodePortRange, parseNodePortRange } from '../model/allocate.js';
import { assembleCluster } from '../model/cluster.js';
import type { Cluster, Warning } from '../model/types.js';
import { parseCIDR } from '../util/ip.js';
import { type DecodedManifest, decodeManifest, emptyDecodedManifest, mergeDecoded } from './decode.js';

/** Files above this size are refused with a clear error rather than read into memory. */
export const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;
const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];

export interface LoadOptions {
  /** A KubeProxyConfiguration file (--config). */
  config?: string;
  /** Fill in protocols, ClusterIPs and node ports as the API server would (--allocate). */
  allocate?: boolean;
  /** --service-cluster-ip-range: comma-separated, one CIDR per family, or a list. */
  serviceClusterIPRange?: string | readonly string[];
  /** --service-node-port-range: "30000-32767" or a range. */
  serviceNodePortRange?: string | NodePortRange;
}

export interface ManifestText {
  /** Names the text in messages, as a file name would. */
  file: string;
  text: string;
}

/** Load manifests from files and folders into a validated Cluster; throws one KpsimError listing every problem. */
export async function loadCluster(paths: string | readonly string[], options: LoadOptions = {}): Promise<Cluster> {
  const list = typeof paths === 'string' ? [paths] : paths;
  if (list.length === 0) throw new KpsimError('KPSIM_ERR_USAGE_MISSING_FLAG', 'no manifest given (-f FILE or FOLDER)');
  const files: string[] = [];
  for (const path of list) files.push(...(await expandPath(path)));
  const texts = await Promise.all(files.map(async (file) => ({ file, text: await readInputFile(file) })));
  if (options.config !== undefined) texts.push({ file: options.config, text: await readInputFile(options.config) });
  return clusterFromManifests(texts, options);
}

/** The same, from texts already in memory (pure: for tests and the API). */
export function clusterFromManifests(texts: readonly ManifestText[], options: LoadOptions = {}): Cluster {
  const decoded = emptyDecodedManifest();
  for (const { file, text } of texts) mergeDecoded(decoded, decodeManifest(text, file, { apiDefaults: options.allocate ?? false }));
  const usageProblems: KpsimError[] = [];
  const serviceCIDRs = readServiceCIDRs(options.serviceClusterIPRange, usageProblems);
  const nodePortRange = readNodePortRange(options.serviceNodePortRange, usageProblems);
  if (usageProblems.length > 0) throw aggregateErrors(usageProblems);
  if (decoded.problems.length > 0) throw aggregateErrors(decoded.problems);
  const warnings: Warning[] = [...decoded.warnings, ...skippedKindsWarning(decoded)];
  return assembleCluster(
    { ...decoded, warnings },
    { allocate: options.allocate ?? false, ...(serviceCIDRs ? { serviceCIDRs } : {}), nodePortRange },
  );
}

function readServiceCIDRs(value: LoadOptions['serviceClusterIPRange'], problems: KpsimError[]): string[] | undefined {
  if (value === undefined) return undefined;
  const texts = typeof value === 'string' ? value.split(',') : [...value];
  const cidrs: string[] = [];
  for (const text of texts.map((t) => t.trim()).filter((t) => t !== '')) {
    const cidr = parseCIDR(text);
    if (!cidr) problems.push(new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `--service-cluster-ip-range: ${JSON.stringify(text)} is not a CIDR`));
    else cidrs.push(cidr.text);
  }
  if (cidrs.length === 2 && parseCIDR(cidrs[0]!)!.family === parseCIDR(cidrs[1]!)!.family) {
    problems.push(new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', '--service-cluster-ip-range: give at most one CIDR per family'));
  }
  return cidrs;
}

function readNodePortRange(value: LoadOptions['serviceNodePortRange'], problems: KpsimError[]): NodePortRange {
  if (value === undefined) return DEFAULT_NODE_PORT_RANGE;
  if (typeof value !== 'string') return value;
  const range = parseNodePortRange(value);
  if (!range) {
    problems.push(new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `--service-node-port-range: ${JSON.stringify(value)} is not a range such as 30000-32767`));
    return DEFAULT_NODE_PORT_RANGE;
  }
  return range;
}

/** "Skipped 3 objects of kinds kpsim does not use: ..." said once, not per object. */
function skippedKindsWarning(decoded: DecodedManifest): Warning[] {
  if (decoded.skippedKinds.size === 0) return [];
  const total = [...decoded.skippedKinds.values()].reduce((a, b) => a + b, 0);
  const kinds = [...decoded.skippedKinds.entries()].map(([kind, n]) => `${kind} x${n}`).join(', ');
  return [{ message: `skipped ${total} object${total === 1 ? '' : 's'} of kinds kpsim does not use: ${kinds}` }];
}

async function expandPath(path: string): Promise<string[]> {
  let info;
  try {
    info = await stat(path);
  } catch (e) {
    throw new KpsimError('KPSIM_ERR_MANIFEST_READ', `cannot read: ${systemReason(e)}`, { file: path });
  }
  if (info.isFile()) return [path];
  if (!info.isDirectory()) throw new KpsimError('KPSIM_ERR_MANIFEST_READ', 'is neither a file nor a folder', { file: path });
  const entries = await readdir(path, { withFileTypes: true });
  const files: string[] = [];
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (entry.name.startsWith('.')) continue;
    const full = join(path, entry.name);
    if (entry.isDirectory()) files.push(...(await expandPath(full)));
    else if (entry.isFile() && MANIFEST_EXTENSIONS.some((ext) => entry.name.endsWith(ext))) files.push(full);
  }
  return files;
}

/**
 * One input file's text. A file that cannot be read is KPSIM_ERR_MANIFEST_READ with the reason
 * in plain words ("no such file or folder"), one above MAX_MANIFEST_BYTES KPSIM_ERR_MANIFEST_TOO_LARGE.
 */
export async function readInputFile(file: string): Promise<string> {
  try {
    const info = await stat(file);
    if (info.size > MAX_MANIFEST_BYTES) {
      throw new KpsimError('KPSIM_ERR_MANIFEST_TOO_LARGE', `is ${Math.round(info.size / 1048576)} MiB; kpsim reads files up to ${MAX_MANIFEST_BYTES / 1048576} MiB`, { file });
    }
    return await readFile(file, 'utf8');
  } catch (e) {
    if (e instanceof KpsimError) throw e;
    throw new KpsimError('KPSIM_ERR_MANIFEST_READ', `cannot read: ${systemReason(e)}`, { file });
  }
}

function systemReason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case 'ENOENT':
      return 'no such file or folder';
    case 'EACCES':
      return 'permission denied';
    case 'EISDIR':
      return 'is a folder';
    default:
      return err.message ?? String(e);
  }
}
