/**
 * Runs kpsim commands for the CLI tests (test/cli/load.test.ts, test/cli/compare.test.ts): in this
 * process for the errors (fast; only stderr is captured, since the test runner reports on stdout),
 * or as the real CLI in a child process.
 */
import { spawn } from 'node:child_process';
import { Command, CommanderError } from 'commander';
import { EXIT_USAGE } from '../../src/cli/common.js';
import { cliEntry } from '../helpers/run-cli.js';

export interface CommandOutcome {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * One command in this process, the way main.ts runs it: `register` adds it to a fresh program,
 * `args` follow `kpsim`. For commands that fail before they print a report: stdout is not captured.
 */
export async function runInProcess(register: (program: Command) => void, args: readonly string[]): Promise<Omit<CommandOutcome, 'stdout'>> {
  const program = new Command('kpsim').exitOverride();
  register(program);
  for (const command of program.commands) command.exitOverride();
  const err: string[] = [];
  const writeErr = process.stderr.write.bind(process.stderr);
  const savedExitCode = process.exitCode;
  process.exitCode = 0;
  process.stderr.write = ((chunk: string | Uint8Array) => { err.push(String(chunk)); return true; }) as typeof process.stderr.write;
  let exitCode: number;
  try {
    await program.parseAsync([...args], { from: 'user' });
    exitCode = Number(process.exitCode ?? 0);
  } catch (e) {
    // main.ts's rule: anything commander rejects is a usage error.
    if (!(e instanceof CommanderError)) throw e;
    exitCode = e.exitCode === 0 ? 0 : EXIT_USAGE;
  } finally {
    process.stderr.write = writeErr;
    process.exitCode = savedExitCode;
  }
  return { exitCode, stderr: err.join('') };
}

/** The real CLI in a child process (sources under tsx, or the installed entry point). */
export function runCli(args: readonly string[]): Promise<CommandOutcome> {
  const main = cliEntry();
  return new Promise((resolve, reject) => {
    // The test runner's own flags must not reach the CLI; a loader (tsx) must.
    const execArgv = process.execArgv.filter((a) => !a.startsWith('--test'));
    const child = spawn(process.execPath, [...execArgv, main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ exitCode: code ?? -1, stdout, stderr }));
  });
}
