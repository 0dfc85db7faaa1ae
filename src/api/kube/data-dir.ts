/**
 * `kpsim serve --data-dir DIR`: the store's objects kept as manifests on disk, one file per
 * object (DIR/<resource>/<namespace>/<name>.yaml; cluster-scoped kinds DIR/<resource>/<name>.yaml)
 * plus the resourceVersion counter in DIR/.resource-version. The folder replays with `-f DIR`.
 *
 * A write is acknowledged only after it is durable: each file is written to a hidden temporary
 * beside it, fsynced, renamed over the old one and its folder fsynced, so a crash at any moment
 * leaves either the old or the new manifest, never a torn one; leftover temporaries are removed
 * on the next start.
 */
import { mkdir, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { KpsimError, aggregateErrors } from '../../errors.js';
import { parseDocuments } from '../../manifest/decode.js';
import type { ManifestObject } from '../../manifest/load.js';
import type { JsonObject } from '../../model/fields.js';
import { RESOURCES, type ResourceType } from './resources.js';
import { type Persistence, type StoreEvent, nameOf, namespaceOf } from './store.js';

const COUNTER_FILE = '.resource-version';
const TEMP_PREFIX = '.tmp-';

export interface DataDirContents {
  objects: ManifestObject[];
  /** The counter as last written (0 for a new folder). */
  resourceVersion: number;
}

function storageError(dir: string, what: string, e: unknown): KpsimError {
  return new KpsimError('KPSIM_ERR_API_STORAGE', `${what}: ${(e as Error).message}`, { file: dir });
}

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes `text` to `path` atomically and durably (temporary, fsync, rename, fsync of the folder). */
async function writeAtomic(folder: string, file: string, text: string): Promise<void> {
  const temp = join(folder, `${TEMP_PREFIX}${file}`);
  const handle = await open(temp, 'w', 0o600);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, join(folder, file));
  await fsyncPath(folder);
}

export class DataDir implements Persistence {
  private constructor(readonly dir: string) {}

  /** Opens (creating) the folder and reads what it holds. */
  static async open(dir: string): Promise<{ dataDir: DataDir; contents: DataDirContents }> {
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      throw storageError(dir, 'cannot create the --data-dir folder', e);
    }
    const dataDir = new DataDir(dir);
    return { dataDir, contents: await dataDir.read() };
  }

  private folderOf(type: ResourceType, namespace: string): string {
    return type.namespaced ? join(this.dir, type.resource, namespace) : join(this.dir, type.resource);
  }

  private async read(): Promise<DataDirContents> {
    const objects: ManifestObject[] = [];
    const problems: KpsimError[] = [];
    let resourceVersion = 0;
    try {
      const counter = (await readFile(join(this.dir, COUNTER_FILE), 'utf8')).trim();
      if (/^\d+$/.test(counter)) resourceVersion = Number(counter);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw storageError(this.dir, 'cannot read the resourceVersion counter', e);
    }
    for (const type of RESOURCES) {
      const base = join(this.dir, type.resource);
      const folders = type.namespaced ? (await listDir(base)).filter((e) => e.isDirectory()).map((e) => join(base, e.name)) : [base];
      for (const folder of folders) {
        for (const entry of await listDir(folder)) {
          const path = join(folder, entry.name);
          if (entry.name.startsWith(TEMP_PREFIX)) {
            await rm(path, { force: true }); // a write that never finished: it was not acknowledged
            continue;
          }
          if (!entry.isFile() || !entry.name.endsWith('.yaml')) continue;
          const text = await readFile(path, 'utf8').catch((e: unknown) => {
            throw storageError(path, 'cannot read', e);
          });
          for (const doc of parseDocuments(text, path, problems)) objects.push({ file: path, doc });
        }
      }
    }
    if (problems.length > 0) throw aggregateErrors(problems);
    return { objects, resourceVersion };
  }

  /** Makes the changes durable; resolves only when every file and folder is synced. */
  async write(changes: readonly StoreEvent[], resourceVersion: number): Promise<void> {
    try {
      for (const change of changes) {
        const folder = this.folderOf(change.resource, namespaceOf(change.object));
        const file = `${nameOf(change.object)}.yaml`;
        if (change.type === 'DELETED') {
          await unlink(join(folder, file)).catch((e: NodeJS.ErrnoException) => {
            if (e.code !== 'ENOENT') throw e;
          });
          await fsyncPath(folder).catch(() => undefined);
        } else {
          await mkdir(folder, { recursive: true });
          await writeAtomic(folder, file, stringify(change.object));
        }
      }
      await writeAtomic(this.dir, COUNTER_FILE, `${resourceVersion}\n`);
    } catch (e) {
      throw storageError(this.dir, 'cannot write', e);
    }
  }

  /** Writes every object of a fresh store (the -f seeds) in one go. */
  async writeAll(objects: readonly { type: ResourceType; object: JsonObject }[], resourceVersion: number): Promise<void> {
    const events: StoreEvent[] = objects.map(({ type, object }) => ({ type: 'ADDED', resource: type, object, resourceVersion }));
    await this.write(events, resourceVersion);
  }
}

async function listDir(path: string): Promise<import('node:fs').Dirent[]> {
  try {
    return (await readdir(path, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw storageError(path, 'cannot read', e);
  }
}
