/** A cluster from `kpsim generate`'s generator, loaded as kpsim loads the files it writes. */
import { generateCluster, type GenerateOptions } from '../../src/generate/cluster.js';
import { clusterFromManifests } from '../../src/manifest/load.js';
import type { Cluster } from '../../src/model/types.js';

export function generatedCluster(opts: GenerateOptions): Cluster {
  const generated = generateCluster(opts);
  return clusterFromManifests(generated.files.map((f) => ({
    file: f.path,
    text: JSON.stringify(f.single ? f.objects[0] : { apiVersion: 'v1', kind: 'List', items: f.objects }),
  })));
}
