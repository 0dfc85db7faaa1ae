/**
 * `--rules-dir DIR`: every sync's payload, and the full state it left, as files.
 *
 *   DIR/000001-IPv4-full.iptables-restore     what the first sync handed to iptables-restore
 *   DIR/000002-IPv4-partial.iptables-restore  the next one (a failed one ends "-failed")
 *   DIR/IPv4.iptables-save                    the tables now (rewritten after every sync)
 *
 * Each mode names its files (ipvs: ".ipvs" payloads, "ipvsadm", "ipset-save" and
 * "iptables-save" states; nftables: ".nft" transactions, ".nft-cleanup" stale-chain deletions,
 * "nft-ruleset" state (both families' tables, as nft list ruleset prints them); userspace:
 * ".userspace" listener changes, "address-map"). State files
 * are written to a temporary name and renamed, so a reader never sees half of one.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KpsimError } from '../errors.js';
import { ipFamilyLabel } from './metrics.js';
import type { SyncEvent } from './proxier.js';

export class RulesDir {
  private constructor(readonly dir: string) {}

  static async open(dir: string): Promise<RulesDir> {
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      throw new KpsimError('KPSIM_ERR_OUTPUT_WRITE', `--rules-dir: cannot create the folder: ${(e as Error).message}`, { file: dir });
    }
    return new RulesDir(dir);
  }

  async write(event: SyncEvent): Promise<void> {
    const label = ipFamilyLabel(event.family);
    const prefix = `${String(event.seq).padStart(6, '0')}-${label}-${event.full ? 'full' : 'partial'}${event.ok ? '' : '-failed'}`;
    try {
      for (const artifact of event.payload) await writeFile(join(this.dir, `${prefix}.${artifact.name}`), artifact.text());
      for (const artifact of event.state()) {
        const file = join(this.dir, `${label}.${artifact.name}`);
        await writeFile(`${file}.tmp`, artifact.text());
        await rename(`${file}.tmp`, file);
      }
    } catch (e) {
      throw new KpsimError('KPSIM_ERR_OUTPUT_WRITE', `--rules-dir: cannot write: ${(e as Error).message}`, { file: this.dir });
    }
  }
}
