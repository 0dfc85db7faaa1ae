/** `kpsim trace`: not written yet. */
import type { Command } from 'commander';

export function registerTrace(_program: Command): void {}
