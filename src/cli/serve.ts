/** `kpsim serve`: not written yet. */
import type { Command } from 'commander';

export function registerServe(_program: Command): void {}
