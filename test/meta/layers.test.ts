/**
 * The pure core imports one way (README "Layout"): a folder of src/ imports only folders listed
 * before it here, never one after it. The iptables layer knows nothing of the tracer (a match
 * module's trace check is stated against an interface the tracer implements), and the model
 * holds what the tracker and the topology code share, so neither imports the other's types.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { test } from 'node:test';

const LAYERS = ['errors.ts', 'util', 'model', 'workload', 'controller', 'manifest', 'topology', 'tracker', 'iptables', 'nftables', 'ipvs', 'trace'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** The top folder of src/ (or the top file, for src/errors.ts) a path is in. */
function layerOf(path: string): string {
  return relative('src', path).split(/[\\/]/)[0]!;
}

const IMPORT = /(?:^|[;\s])(?:import|export)\s[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

test('the pure core imports only the layers before it', () => {
  const wrong: string[] = [];
  for (const file of sourceFiles('src')) {
    const from = LAYERS.indexOf(layerOf(file));
    if (from < 0) continue;
    for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const target = normalize(join(dirname(file), (m[1] ?? m[2])!));
      const to = LAYERS.indexOf(layerOf(target));
      if (to > from) wrong.push(`${file} imports ${relative('src', target)} (${LAYERS[to]} comes after ${LAYERS[from]})`);
    }
  }
  assert.deepEqual(wrong, []);
});
