/**
 * The load generator inside a lab's client namespace (started by kernel-load.ts with
 * `ip netns exec`): the same autocannon run as `kpsim load`, aimed at a service address that
 * only the lab's node answers for. It refuses to run anywhere but inside the namespace it was
 * told, so the load never leaves namespaces kpsim made.
 *
 *   ip netns exec kpsim-lab-ID-client node lab-load.js --namespace kpsim-lab-ID-client --options JSON
 *
 * Prints one JSON line per progress tick ({"progress":…}) and one with the result ({"result":…}).
 */
import { parseArgs } from 'node:util';
import { runLoad } from '../load/runner.js';
import type { LoadRunOptions } from '../load/types.js';
import { checkInsideNamespace } from './namespace-check.js';

const { values } = parseArgs({ options: { namespace: { type: 'string' }, options: { type: 'string' } } });
const options = JSON.parse(values.options!) as LoadRunOptions;
const write = (message: unknown): boolean => process.stdout.write(`${JSON.stringify(message)}\n`);
try {
  const result = await runLoad(options, (progress) => write({ progress }), () => checkInsideNamespace(values.namespace!));
  write({ result });
} catch (e) {
  write({ error: e instanceof Error ? e.message : String(e) });
  process.exitCode = 1;
}
