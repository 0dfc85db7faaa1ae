#!/usr/bin/env node
/**
 * kpsim's command line: one file per command, listed in command-table.ts and loaded only when
 * it runs. Usage errors (unknown flags, missing arguments, bad values) exit 2 naming the flag;
 * errors in the input exit 1.
 */
import { Command, CommanderError } from 'commander';
import { COMMANDS } from './command-table.js';
import { EXIT_USAGE, reportError } from './report.js';
import { VERSION } from './version.js';

/**
 * The program with the command `argv` names fully registered (its module loaded); every other
 * command only by name and summary, enough for `kpsim --help` and commander's suggestions.
 */
export async function buildProgram(argv: readonly string[]): Promise<Command> {
  const program = new Command('kpsim')
    .description('A kube-proxy-style data plane simulator: iptables and IPVS rules, packet traces, a userspace proxy and load tests')
    .version(VERSION)
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();
  const wanted = commandNamed(argv.slice(2));
  for (const entry of COMMANDS) {
    if (entry.name === wanted) (await entry.load())(program);
    else program.command(entry.name).description(entry.summary);
  }
  for (const command of program.commands) command.exitOverride();
  return program;
}

/** The command the arguments run: the first word that is not an option (`help X` runs X's help). */
function commandNamed(args: readonly string[]): string | undefined {
  const words = args.filter((a) => !a.startsWith('-'));
  return words[0] === 'help' ? words[1] : words[0];
}

async function main(argv: string[]): Promise<void> {
  // Output piped into a reader that stops early (`kpsim compile ... | head`) is not an error.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
  try {
    const program = await buildProgram(argv);
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
