/**
 * The only place that reads input files: manifests from files and folders (recursively: *.yaml,
 * *.yml, *.json), standard input ("-"), plus the --config file, into one validated Cluster (then
 * the control plane, controller/control-plane.ts, derives what the cluster would add); and, with
 * `readInputFile`, the CLI's other inputs (iptables-save dumps, --flows, serve's flag files).
 */
import { open, readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { runControlPlane } from '../controller/control-plane.js';
import { KpsimError, aggregateErrors } from '../errors.js';
import { DEFAULT_NODE_PORT_RANGE, type NodePortRange, parseNodePortRange } from '../model/allocate.js';
import { assembleCluster } from '../model/cluster.js';
import { SharedValues } from '../model/shared-values.js';
import type { Cluster, Warning } from '../model/types.js';
import { parseCIDR } from '../util/ip.js';
import type { Json } from '../model/fields.js';
import { type DecodeOptions, type DecodedManifest, decodeJSONListPieces, decodeManifest, decodeObject, emptyDecodedManifest, mergeDecoded, parseDocuments } from './decode.js';
import { type JSONListExtents, scanJSONList } from './json-list.js';

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
  /** --nodes: how many nodes --allocate creates when the input has no Node objects (default 3). */
  nodes?: number;
  /** --cluster-cidr: the pod CIDRs (one per family) node pod CIDRs come from under --allocate; default kube-proxy's clusterCIDR, else 10.244.0.0/16. */
  clusterCIDR?: string | readonly string[];
  /** kube-controller-manager --max-endpoints-per-slice for the slices kpsim derives (default 100). */
  maxEndpointsPerSlice?: number;
  /** Mixed into the hashes that stand for random name suffixes (default 0): another seed, other names. */
  seed?: number;
}

/** The file name standard input goes by in messages (-f -). */
export const STDIN_FILE = '<stdin>';

export interface ManifestText {
  /** Names the text in messages, as a file name would. */
  file: string;
  text: string;
}

/**
 * Load manifests from files and folders into a validated Cluster; throws one KpsimError listing every problem.
 *
 * Files are read and decoded one at a time, into one buffer grown to the largest file, and a JSON
 * List is decoded item by item straight from its bytes: a big cluster's texts (hundreds of MB) are
 * never made whole, let alone all alive at once, and each item's text and tree die young.
 */
export async function loadCluster(paths: string | readonly string[], options: LoadOptions = {}): Promise<Cluster> {
  if (paths.length === 0) throw new KpsimError('KPSIM_ERR_USAGE_MISSING_FLAG', 'no manifest given (-f FILE or FOLDER)');
  const decoded = emptyDecodedManifest();
  const decodeOptions: DecodeOptions = { apiDefaults: options.allocate ?? false, shared: new SharedValues() };
  const buffer: ReadBuffer = { bytes: Buffer.alloc(0) };
  for (const file of await manifestFiles(paths, options.config)) {
    const bytes = file === STDIN_FILE ? await readStdinBytes() : await readInputBytes(file, buffer);
    mergeDecoded(decoded, decodeManifestBytes(bytes, file, decodeOptions));
  }
  if (options.config !== undefined) mergeDecoded(decoded, decodeManifestBytes(await readInputBytes(options.config, buffer), options.config, decodeOptions));
  return clusterFromDecoded(decoded, options);
}

/**
 * One file's bytes decoded as decodeManifest decodes its text: a JSON List item by item, each
 * item's text made from its bytes only when it is parsed; anything else (or any doubt) from the
 * whole text.
 */
function decodeManifestBytes(bytes: Buffer, file: string, options: DecodeOptions): DecodedManifest {
  const list = scanJSONList(bytes);
  if (list) {
    const head = `${bytes.toString('utf8', 0, list.arrayStart)}[]${bytes.toString('utf8', list.arrayEnd)}`;
    const decoded = decodeJSONListPieces(head, itemTexts(bytes, list), file, options);
    if (decoded) return decoded;
  }
  return decodeManifest(bytes.toString('utf8'), file, options);
}

function* itemTexts(bytes: Buffer, list: JSONListExtents): Generator<string> {
  const extents = list.items;
  for (let k = 0; k < extents.length; k += 2) yield bytes.toString('utf8', extents[k], extents[k + 1]);
}

/** The texts of files and folders (recursively) and of the --config file, in order. */
export async function readManifestTexts(paths: string | readonly string[], config?: string): Promise<ManifestText[]> {
  const files = await manifestFiles(paths, config);
  const texts = await Promise.all(files.map(async (file) => ({ file, text: file === STDIN_FILE ? await readStdin() : await readInputFile(file) })));
  if (config !== undefined) texts.push({ file: config, text: await readInputFile(config) });
  return texts;
}

/** The files that paths name (folders expanded, "-" as STDIN_FILE), in order; `config` only for the usage check. */
async function manifestFiles(paths: string | readonly string[], config?: string): Promise<string[]> {
  const list = typeof paths === 'string' ? [paths] : paths;
  if (list.length === 0 && config === undefined) throw new KpsimError('KPSIM_ERR_USAGE_MISSING_FLAG', 'no manifest given (-f FILE or FOLDER)');
  if (list.filter((p) => p === '-').length > 1) throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', '-f -: standard input can be read only once');
  const files: string[] = [];
  for (const path of list) files.push(...(path === '-' ? [STDIN_FILE] : await expandPath(path)));
  return files;
}

/**
 * The documents of manifest texts, parsed but not decoded (kpsim serve keeps them as they are);
 * a syntax problem in any file is thrown, naming it, before anything is used.
 */
export function parseManifestObjects(texts: readonly ManifestText[]): ManifestObject[] {
  const problems: KpsimError[] = [];
  const objects: ManifestObject[] = [];
  for (const { file, text } of texts) for (const doc of parseDocuments(text, file, problems)) objects.push({ file, doc });
  if (problems.length > 0) throw aggregateErrors(problems);
  return objects;
}

/** The same, from texts already in memory (pure: for tests and the API). */
export function clusterFromManifests(texts: readonly ManifestText[], options: LoadOptions = {}): Cluster {
  const decoded = emptyDecodedManifest();
  const shared = new SharedValues();
  for (const { file, text } of texts) mergeDecoded(decoded, decodeManifest(text, file, { apiDefaults: options.allocate ?? false, shared }));
  return clusterFromDecoded(decoded, options);
}

/** An object already parsed, and what names its source in messages (a file, a server's URL). */
export interface ManifestObject {
  file: string;
  doc: Json;
}

/** The same, from objects already parsed (a live cluster's lists, the API's store). */
export function clusterFromObjects(objects: readonly ManifestObject[], options: LoadOptions = {}): Cluster {
  const decoded = emptyDecodedManifest();
  const shared = new SharedValues();
  for (const { file, doc } of objects) mergeDecoded(decoded, decodeObject(doc, file, { apiDefaults: options.allocate ?? false, shared }));
  return clusterFromDecoded(decoded, options);
}

/**
 * Decoded objects → one validated Cluster: the flag values, every problem at once, the
 * skipped-kinds warning. With `allocate`, the decoded Services get their ClusterIPs and node ports.
 */
export function clusterFromDecoded(decoded: DecodedManifest, options: LoadOptions = {}): Cluster {
  const usageProblems: KpsimError[] = [];
  const serviceCIDRs = readCIDRsFlag('--service-cluster-ip-range', options.serviceClusterIPRange, usageProblems);
  const clusterCIDRs = readCIDRsFlag('--cluster-cidr', options.clusterCIDR, usageProblems);
  const nodePortRange = readNodePortRange(options.serviceNodePortRange, usageProblems);
  checkCount('--nodes', options.nodes, 0, usageProblems);
  checkCount('maxEndpointsPerSlice', options.maxEndpointsPerSlice, 1, usageProblems);
  if (usageProblems.length > 0) throw aggregateErrors(usageProblems);
  if (decoded.problems.length > 0) throw aggregateErrors(decoded.problems);
  const warnings: Warning[] = [...decoded.warnings, ...skippedKindsWarning(decoded), ...ignoredNodesFlag(options, decoded)];
  const allocate = options.allocate ?? false;
  const cluster = assembleCluster({ ...decoded, warnings }, { allocate, ...(serviceCIDRs ? { serviceCIDRs } : {}), nodePortRange });
  return runControlPlane(cluster, {
    allocate,
    ...(options.nodes !== undefined ? { nodeCount: options.nodes } : {}),
    ...(clusterCIDRs ? { clusterCIDRs } : {}),
    ...(options.maxEndpointsPerSlice !== undefined ? { maxEndpointsPerSlice: options.maxEndpointsPerSlice } : {}),
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
  });
}

/** A list of CIDRs given as "a,b" or a list: one per family. */
function readCIDRsFlag(flag: string, value: string | readonly string[] | undefined, problems: KpsimError[]): string[] | undefined {
  if (value === undefined) return undefined;
  const texts = typeof value === 'string' ? value.split(',') : [...value];
  const cidrs: string[] = [];
  for (const text of texts.map((t) => t.trim()).filter((t) => t !== '')) {
    const cidr = parseCIDR(text);
    if (!cidr) problems.push(new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `${flag}: ${JSON.stringify(text)} is not a CIDR`));
    else cidrs.push(cidr.text);
  }
  if (cidrs.length === 2 && parseCIDR(cidrs[0]!)!.family === parseCIDR(cidrs[1]!)!.family) {
    problems.push(new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `${flag}: give at most one CIDR per family`));
  }
  return cidrs;
}

function checkCount(flag: string, value: number | undefined, min: number, problems: KpsimError[]): void {
  if (value !== undefined && (!Number.isInteger(value) || value < min)) {
    problems.push(new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `${flag}: ${JSON.stringify(value)} is not a whole number >= ${min}`));
  }
}

/** --nodes counts only when --allocate creates the nodes: say when it does nothing. */
function ignoredNodesFlag(options: LoadOptions, decoded: DecodedManifest): Warning[] {
  if (options.nodes === undefined) return [];
  if (!options.allocate) return [{ message: '--nodes is ignored without --allocate (which creates the nodes)' }];
  if (decoded.nodes.length > 0) return [{ message: `--nodes is ignored: the input has ${decoded.nodes.length} Node object${decoded.nodes.length === 1 ? '' : 's'}` }];
  return [];
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

/** All of standard input (-f -), as kubectl apply -f - reads it; refused above the file size limit. */
async function readStdin(): Promise<string> {
  return (await readStdinBytes()).toString('utf8');
}

async function readStdinBytes(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buffer.length;
    if (size > MAX_MANIFEST_BYTES) {
      throw new KpsimError('KPSIM_ERR_MANIFEST_TOO_LARGE', `is over ${MAX_MANIFEST_BYTES / 1048576} MiB; kpsim reads up to ${MAX_MANIFEST_BYTES / 1048576} MiB`, { file: STDIN_FILE });
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * One input file's text. A file that cannot be read is KPSIM_ERR_MANIFEST_READ with the reason
 * in plain words ("no such file or folder"), one above MAX_MANIFEST_BYTES KPSIM_ERR_MANIFEST_TOO_LARGE;
 * `flag` (e.g. "--token-file") names the flag that gave the file, in the message.
 */
export async function readInputFile(file: string, flag?: string): Promise<string> {
  const said = flag === undefined ? '' : `${flag}: `;
  try {
    const info = await stat(file);
    if (info.size > MAX_MANIFEST_BYTES) throw tooLarge(file, info.size, said);
    return await readFile(file, 'utf8');
  } catch (e) {
    if (e instanceof KpsimError) throw e;
    throw new KpsimError('KPSIM_ERR_MANIFEST_READ', `${said}cannot read: ${systemReason(e)}`, { file });
  }
}

/** The buffer a load reads its files into, one after another. */
interface ReadBuffer {
  bytes: Buffer;
}

/**
 * One input file's bytes, read into `buffer` (grown when the file is bigger): the bytes of one
 * file are valid until the next is read. Refused as readInputFile refuses (the same codes and
 * messages). One buffer for every file of a load, because memory touched for the first time costs
 * a page fault per 4 KB: a fresh buffer for each 22 MB file would be 22 MB of faults every time.
 */
async function readInputBytes(file: string, buffer: ReadBuffer): Promise<Buffer> {
  try {
    const info = await stat(file);
    if (info.size > MAX_MANIFEST_BYTES) throw tooLarge(file, info.size, '');
    const handle = await open(file, 'r');
    try {
      if (info.size > buffer.bytes.length) buffer.bytes = Buffer.allocUnsafeSlow(info.size);
      // Read to the end as readFile does: up to the size stat gave, or to end of file when the
      // size is unknown (0: grow the buffer as it fills) or the file is shorter.
      let length = 0;
      while (info.size === 0 || length < info.size) {
        if (length === buffer.bytes.length) buffer.bytes = grown(buffer.bytes, length, Math.max(2 * length, 65536));
        const { bytesRead } = await handle.read(buffer.bytes, length, (info.size === 0 ? buffer.bytes.length : info.size) - length, null);
        if (bytesRead === 0) break;
        length += bytesRead;
      }
      return buffer.bytes.subarray(0, length);
    } finally {
      await handle.close();
    }
  } catch (e) {
    if (e instanceof KpsimError) throw e;
    throw new KpsimError('KPSIM_ERR_MANIFEST_READ', `cannot read: ${systemReason(e)}`, { file });
  }
}

/** A bigger buffer holding the first `length` bytes of `bytes`. */
function grown(bytes: Buffer, length: number, size: number): Buffer {
  const bigger = Buffer.allocUnsafeSlow(size);
  bytes.copy(bigger, 0, 0, length);
  return bigger;
}

function tooLarge(file: string, size: number, said: string): KpsimError {
  return new KpsimError('KPSIM_ERR_MANIFEST_TOO_LARGE', `${said}is ${Math.round(size / 1048576)} MiB; kpsim reads files up to ${MAX_MANIFEST_BYTES / 1048576} MiB`, { file });
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
