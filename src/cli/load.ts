/** `kpsim load`: not written yet. */
import type { Command } from 'commander';

export function registerLoad(_program: Command): void {}
