/**
 * The nftables golden files of the example clusters: rules/<name>/nftables.v4.txt and
 * nftables.v6.txt hold the `nft -f` script kpsim compiles for the cluster's node, one file per
 * IP family (kube-proxy runs one table per family).
 */
import { join } from 'node:path';
import { compileNftablesRules } from '../../src/nftables/compile.js';
import { renderNftScript } from '../../src/nftables/render-script.js';
import type { NftRuleset } from '../../src/nftables/types.js';
import type { Cluster } from '../../src/model/types.js';
import type { Family } from '../../src/util/ip.js';
import { goldenState } from './cluster-builders.js';

export function nftGoldenFile(dir: string, family: Family): string {
  return join(dir, `nftables.v${family}.txt`);
}

export function compileNftGolden(cluster: Cluster, family: Family): NftRuleset {
  return compileNftablesRules(goldenState(cluster, family));
}

/** What the golden file of a cluster and family holds. */
export function renderNftGolden(cluster: Cluster, family: Family): string {
  return renderNftScript(compileNftGolden(cluster, family));
}
