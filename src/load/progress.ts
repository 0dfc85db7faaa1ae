/**
 * A progress bar on stderr while load runs, only when stderr is a terminal: in a pipe or a CI log
 * it would be noise between the lines that matter. stdout stays for the report.
 */
import cliProgress from 'cli-progress';
import type { LoadProgress, ProgressListener } from './types.js';

export interface ProgressDisplay {
  readonly listener: ProgressListener;
  stop(): void;
}

export function startProgressBar(label: string, durationSeconds: number, stream: NodeJS.WriteStream = process.stderr): ProgressDisplay {
  if (!stream.isTTY) return { listener: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${label} [{bar}] {value}/{total} s | {responses} responses | {rate} req/s`,
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const total = Math.max(1, Math.round(durationSeconds));
  bar.start(total, 0, { responses: 0, rate: 0 });
  let stopped = false;
  return {
    listener: (p: LoadProgress) => {
      bar.update(Math.min(total, Math.floor(p.elapsedSeconds)), {
        responses: p.responses,
        rate: p.elapsedSeconds > 0 ? Math.round(p.responses / p.elapsedSeconds) : 0,
      });
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
