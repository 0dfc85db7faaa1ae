/**
 * `kpsim serve` as a user starts it: the CLI's entry point (run-cli.ts) in a child process, quiet,
 * on a free loopback port; resolves with its URL once it listens.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { cliEntry } from './run-cli.js';

export interface ServeProcess {
  child: ChildProcessWithoutNullStreams;
  url: string;
  /** SIGTERM, then the exit code. */
  stop: () => Promise<number | null>;
}

export async function startServe(args: readonly string[]): Promise<ServeProcess> {
  const child = spawn(process.execPath, [...process.execArgv, cliEntry(), 'serve', '-q', '--port', '0', ...args], { stdio: 'pipe' });
  let out = '';
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /the Kubernetes API on (https?:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    void exited.then((code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
  return {
    child,
    url,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}
