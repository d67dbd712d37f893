// `step-telemetry report <run folder> [-o FILE]`. Exit codes: 0 written, 2 a usage error or a
// folder that is not a readable run folder (the message names the file and line).
import { parseRunFolderArgs, UsageError } from '../run-folder/cli-args.js';
import { RunFolderError } from '../run-folder/files.js';
import { writeReport } from './index.js';

export const REPORT_USAGE = `Usage: step-telemetry report <run folder> [-o FILE]

Writes one self-contained HTML file (no network needed to view it) for a pipeline run folder
(<dir>/<pipeline_run_id>) or a step folder: for a failed run, one sentence on what failed and where;
the doctor's findings; steps and mini-batches on a timeline; mini-batch latency over time (p50/p95/p99
per bucket, failed attempts marked by kind) and its distribution; failures and retries grouped by
cause with stack traces; the step.log metrics as charts (train and validation series overlaid),
confusion matrices as heatmaps; the progress overview and the workers; and the log records
filterable by level, step, mini-batch and text.

  -o, --output FILE   where to write (default: report.html inside the run folder)
  --title TEXT        the page title
  --max-logs N        log records kept in the page (default 5000; errors and warnings first)
  --quiet             print nothing on success

Exit code: 0 written, 2 a usage error or a folder that is not a readable run folder.
`;

export async function main(argv: readonly string[]): Promise<number> {
  let output: string | undefined;
  let title: string | undefined;
  let maxLogs: number | undefined;
  let quiet = false;
  const folder = parseRunFolderArgs('report', REPORT_USAGE, argv, (option) => {
    switch (option.name) {
      case '-o':
      case '--output':
        output = option.value();
        return true;
      case '--title':
        title = option.value();
        return true;
      case '--max-logs': {
        const v = option.value();
        maxLogs = Number(v);
        if (!Number.isInteger(maxLogs) || maxLogs < 0) throw new UsageError(`--max-logs: expected a whole number >= 0, got "${v}"`);
        return true;
      }
      case '--quiet':
      case '-q':
        quiet = true;
        return true;
      default:
        return false;
    }
  });
  if (typeof folder === 'number') return folder;
  try {
    const r = writeReport(folder, output, { title, maxLogRecords: maxLogs });
    for (const note of r.notes) process.stderr.write(`step-telemetry report: note: ${note}\n`);
    if (!quiet) {
      process.stdout.write(
        `report: ${r.file} (${(r.bytes / 1024).toFixed(0)} KiB; ${r.steps} step${r.steps === 1 ? '' : 's'}, ${r.attempts} mini-batch attempts; read ${(r.readMs / 1000).toFixed(2)} s, built ${(r.buildMs / 1000).toFixed(2)} s)\n`,
      );
    }
    return 0;
  } catch (error) {
    if (error instanceof RunFolderError) {
      process.stderr.write(`step-telemetry report: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

