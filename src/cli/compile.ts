/** `kpsim compile`: not written yet. */
import type { Command } from 'commander';

export function registerCompile(_program: Command): void {}
