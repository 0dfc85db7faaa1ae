/**
 * Runs kpsim's CLI as a child process, as a user would: the installed entry point (the bundle,
 * dist/cli/main.js, which `npm test` builds) under `npm test`, or the TypeScript source through
 * the same loader when tests run with tsx.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The script a user's `kpsim` runs (see above); every test that spawns the CLI starts this one. */
export function cliEntry(): string {
  // Under dist/test/helpers/ the package's bin is ../../cli/main.js; from the sources it is main.ts.
  const bundle = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
  if (existsSync(bundle)) return bundle;
  return fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
}

export function runCli(args: readonly string[], opts: { input?: string; cwd?: string } = {}): CliResult {
  const result = spawnSync(process.execPath, [...process.execArgv, cliEntry(), ...args], {
    encoding: 'utf8',
    cwd: opts.cwd ?? process.cwd(),
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
