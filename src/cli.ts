#!/usr/bin/env node
// The step-telemetry command. Each subcommand is loaded only when called, so the library's import
// path never pays for the CLI.
import { readFileSync } from 'node:fs';

const USAGE = `Usage: step-telemetry <command> [options]

Commands:
  parallel-run       run an entry script over mini-batches of the input (parallel-run --help)
  report FOLDER      write a self-contained HTML report of a run folder (report --help)
  doctor FOLDER      check a run folder for common problems, exit 1 on errors (doctor --help)
  merge FOLDER       write a multi-node job's merged files from its node folders (merge --help)
  version            print the version
  help               this text
`;

async function main(argv: string[]): Promise<number> {
  const [command] = argv;
  switch (command) {
    case 'version':
    case '--version':
    case '-v': {
      const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
      process.stdout.write(`${pkg.version}\n`);
      return 0;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    case 'parallel-run': {
      const { main: parallelRun } = await import('./runner/cli.js');
      return parallelRun(argv.slice(1));
    }
    case 'report': {
      const { main: report } = await import('./report/cli.js');
      return report(argv.slice(1));
    }
    case 'doctor': {
      const { main: doctor } = await import('./doctor/cli.js');
      return doctor(argv.slice(1));
    }
    case 'merge': {
      const { main: merge } = await import('./runner/merge-cli.js');
      return merge(argv.slice(1));
    }
    default:
      process.stderr.write(`step-telemetry: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`step-telemetry: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
