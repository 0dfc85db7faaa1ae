/** `kpsim compare`: not written yet. */
import type { Command } from 'commander';

export function registerCompare(_program: Command): void {}
