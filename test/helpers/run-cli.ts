/**
 * Runs kpsim's CLI as a child process, as a user would: the installed entry point (the bundle,
 * dist/cli/main.js, which `npm test` builds) under `npm test`, or the TypeScript source through
 * the same loader when tests run with tsx.
 */
import { spawn, spawnSync } from 'node:child_process';
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

/**
 * The same, without blocking: for tests whose server runs in the test's own process (a
 * blocking spawn would stop it from answering).
 */
export function runCliAsync(args: readonly string[], opts: { input?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return runAsync(process.execPath, [...process.execArgv, cliEntry(), ...args], opts);
}

/** Any program, without blocking; its output as text. Killed after `timeoutMs` (60 s). */
export function runAsync(command: string, args: readonly string[], opts: { input?: string; cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: opts.cwd ?? process.cwd(), env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}
