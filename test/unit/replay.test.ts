/**
 * Deploy safety: the current workflow code must replay every recorded history in test/fixtures/histories/
 * (real runs of pipeline, prepareCorpus and pretrain, recorded by test/support/record-histories.ts). A change
 * that breaks one of them needs `patched()` (docs/operations.md).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { temporal } from '@temporalio/proto';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundle } from '@temporalio/worker';
import { repoRoot } from '../../lib/settings';
import type { HistoryFixture } from '../support/record-histories';

const DIR = join(repoRoot(), 'test', 'fixtures', 'histories');
const fixtures = JSON.parse(readFileSync(join(DIR, 'index.json'), 'utf8')) as HistoryFixture[];

describe('replay of recorded workflow histories', { timeout: 300_000 }, () => {
  let bundle: WorkflowBundle;

  before(async () => {
    try {
      Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
    } catch {
      // Installed by another test file of this process.
    }
    bundle = await bundleWorkflowCode({
      workflowsPath: require.resolve('../../workflows'),
      logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} },
    });
  });

  it('has fixtures of every workflow type, and every recorded file is listed', () => {
    for (const type of ['pipeline', 'prepareCorpus', 'pretrain'])
      assert.ok(
        fixtures.some((f) => f.workflowType === type),
        `no recorded ${type} history in ${DIR}/index.json`,
      );
    const listed = new Set(fixtures.map((f) => f.file));
    for (const file of readdirSync(DIR).filter((f) => f.endsWith('.binpb')))
      assert.ok(listed.has(file), `${file} is not in index.json`);
  });

  for (const { file, workflowId } of fixtures)
    it(`replays ${file} (${workflowId})`, async () => {
      const history = temporal.api.history.v1.History.decode(readFileSync(join(DIR, file)));
      await Worker.runReplayHistory({ workflowBundle: bundle }, history, workflowId);
    });
});
