/**
 * `cotmae data import`: publish a local corpus directory as a dataset artifact (datasets/<name>/ with a
 * manifest), so workers on other machines read it from the store with ranged gets.
 */
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { beginArtifact, computeCacheKey, openStore } from '../artifacts';
import { detectLayout, listLocalInputs } from '../corpus';
import { ConfigError } from '../errors';

export interface ImportDatasetResult {
  uri: string;
  manifestSha256: string;
  files: number;
  bytes: number;
  format: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export async function importDataset(
  dir: string,
  storeUri: string,
  name = basename(resolve(dir)),
): Promise<ImportDatasetResult> {
  if (!NAME.test(name))
    throw new ConfigError('name', `${JSON.stringify(name)}: use letters, digits, ".", "_" or "-"`);
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) throw new ConfigError('dir', `${dir}: not a directory`);
  const files = (await listLocalInputs(dir)).filter(
    (f) => f.name !== 'manifest.json' && !f.name.startsWith('.'),
  );
  // Refuse what the pipeline could not read later, before uploading anything.
  const layout = detectLayout(files.map((f) => f.name));
  const store = openStore(storeUri);
  try {
    const config = { format: layout.format, files: files.map((f) => [f.name, f.size]) };
    const writer = await beginArtifact(
      store,
      `datasets/${name}`,
      {
        stage: 'dataset',
        runId: name,
        cacheKey: computeCacheKey({ stage: 'dataset', inputs: [], config }),
        config,
      },
      { overwrite: true },
    );
    await writer.addLocalDir(dir);
    const committed = await writer.commit({
      files: files.length,
      bytes: files.reduce((a, f) => a + f.size, 0),
    });
    return {
      uri: committed.uri,
      manifestSha256: committed.manifestSha256,
      files: files.length,
      bytes: files.reduce((a, f) => a + f.size, 0),
      format: layout.format,
    };
  } finally {
    await store.close();
  }
}
