/**
 * Runs kpsim's CLI as a child process, as a user would: the compiled dist/src/cli/main.js under
 * `npm test`, or the TypeScript source through the same loader when tests run with tsx.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

function mainScript(): string {
  const js = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  if (existsSync(js)) return js;
  return fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
}

export function runCli(args: readonly string[], opts: { input?: string; cwd?: string } = {}): CliResult {
  const result = spawnSync(process.execPath, [...process.execArgv, mainScript(), ...args], {
    encoding: 'utf8',
    cwd: opts.cwd ?? process.cwd(),
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
