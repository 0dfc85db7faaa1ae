/** `kpsim up`: not written yet. */
import type { Command } from 'commander';

export function registerUp(_program: Command): void {}
