// The lock files `doctor --reference` reads: the version installed for each top-level package.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLockFile } from '../src/doctor/reference.js';
import { RunFolderError } from '../src/run-folder/files.js';
import { useTempDir } from './helpers/run-step.js';

async function lock(name: string, text: string): Promise<string> {
  const file = path.join(await useTempDir(), name);
  fs.writeFileSync(file, text);
  return file;
}

describe('readLockFile', () => {
  it('package-lock.json v3: top-level node_modules entries only', async () => {
    const file = await lock(
      'package-lock.json',
      JSON.stringify({
        lockfileVersion: 3,
        packages: {
          '': { name: 'app' },
          'node_modules/winston': { version: '3.19.0' },
          'node_modules/@azure/core-rest-pipeline': { version: '1.22.0' },
          'node_modules/winston/node_modules/readable-stream': { version: '3.6.2' },
        },
      }),
    );
    expect(Object.fromEntries(readLockFile(file))).toEqual({ winston: ['3.19.0'], '@azure/core-rest-pipeline': ['1.22.0'] });
  });

  it('package-lock.json v1', async () => {
    const file = await lock('npm-shrinkwrap.json', JSON.stringify({ lockfileVersion: 1, dependencies: { yaml: { version: '2.9.1' } } }));
    expect(Object.fromEntries(readLockFile(file))).toEqual({ yaml: ['2.9.1'] });
  });

  it('yarn.lock (classic and berry)', async () => {
    const classic = await lock(
      'yarn.lock',
      '# yarn lockfile v1\n\n"@types/node@^20.0.0", "@types/node@^20.19.0":\n  version "20.19.43"\n  resolved "https://x"\n\nwinston@^3.0.0:\n  version "3.19.0"\n\nwinston@^2.0.0:\n  version "2.4.7"\n',
    );
    expect(Object.fromEntries(readLockFile(classic))).toEqual({ '@types/node': ['20.19.43'], winston: ['3.19.0', '2.4.7'] });
    const berry = await lock('yarn.lock', '__metadata:\n  version: 8\n\n"yaml@npm:^2.9.0":\n  version: 2.9.1\n  resolution: "yaml@npm:2.9.1"\n');
    expect(Object.fromEntries(readLockFile(berry))).toEqual({ yaml: ['2.9.1'] });
  });

  it('pnpm-lock.yaml (v9 importers, with peer suffixes)', async () => {
    const file = await lock(
      'pnpm-lock.yaml',
      "lockfileVersion: '9.0'\nimporters:\n  .:\n    dependencies:\n      winston:\n        specifier: ^3.0.0\n        version: 3.19.0\n      '@opentelemetry/core':\n        specifier: 2.7.1\n        version: 2.7.1(@opentelemetry/api@1.9.0)\n    devDependencies:\n      vitest:\n        specifier: 4.1.12\n        version: 4.1.12\n",
    );
    expect(Object.fromEntries(readLockFile(file))).toEqual({ winston: ['3.19.0'], '@opentelemetry/core': ['2.7.1'], vitest: ['4.1.12'] });
  });

  it('refuses what is not a lock file, naming it', async () => {
    const file = await lock('requirements.txt', 'numpy==1.26\n');
    expect(() => readLockFile(file)).toThrow(RunFolderError);
    expect(() => readLockFile(file)).toThrow(/requirements\.txt: not a lock file this command reads/);
    const json = await lock('package-lock.json', '{"name": "x",\n  "packages": {\n');
    expect(() => readLockFile(json)).toThrow(/package-lock\.json:3: not valid JSON \(truncated\?\)/);
  });
});
