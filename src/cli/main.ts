#!/usr/bin/env node
/**
 * kpsim's command line: one file per command, registered here. Usage errors (unknown flags,
 * missing arguments, bad values) exit 2 naming the flag; errors in the input exit 1.
 */
import { Command, CommanderError } from 'commander';
import { EXIT_USAGE, reportError } from './common.js';
import { registerCompare } from './compare.js';
import { registerCompile } from './compile.js';
import { registerDemo } from './demo.js';
import { registerDump } from './dump.js';
import { registerLoad } from './load.js';
import { registerServe } from './serve.js';
import { registerSimulate } from './simulate.js';
import { registerTrace } from './trace.js';
import { registerUp } from './up.js';
import { VERSION } from './version.js';

export function buildProgram(): Command {
  const program = new Command('kpsim')
    .description('A kube-proxy-style data plane simulator: iptables and IPVS rules, packet traces, a userspace proxy and load tests')
    .version(VERSION)
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();
  for (const register of [registerDemo, registerCompile, registerTrace, registerSimulate, registerUp, registerLoad, registerCompare, registerServe, registerDump]) {
    register(program);
  }
  for (const command of program.commands) command.exitOverride();
  return program;
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end with code 0; anything else commander rejects is a usage error.
      process.exitCode = e.exitCode === 0 ? 0 : EXIT_USAGE;
      return;
    }
    process.exitCode = reportError(e, argv.includes('--debug'));
  }
}

await main(process.argv);
