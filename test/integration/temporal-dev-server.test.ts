// Starts the real `temporal server start-dev` (from .venv, see make setup) on free ports.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Connection } from '@temporalio/client';
import { type DevServer, DevServerStartError, SEARCH_ATTRIBUTES, startDevServer } from '../../infra/temporal';

const KEYWORD = 2; // temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
const KEYWORD_LIST = 7;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('embedded Temporal dev server', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'temporal-dev-'));
  const dbFilename = join(dir, 'dev.sqlite');
  let server: DevServer;
  let connection: Connection;

  before(async () => {
    server = await startDevServer({ freePorts: true, dbFilename });
    connection = await Connection.connect({ address: server.address });
  });

  after(async () => {
    await connection?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('answers health checks and knows the namespace', async () => {
    assert.match(server.address, /^127\.0\.0\.1:\d+$/);
    assert.notEqual(server.address, '127.0.0.1:7233', 'free ports, not the default');
    const health = await connection.healthService.check({});
    assert.equal(health.status, 1); // SERVING
    const ns = await connection.workflowService.describeNamespace({ namespace: server.namespace });
    assert.equal(ns.namespaceInfo?.name, 'default');
    assert.ok(statSync(dbFilename).size > 0, 'state is persisted in the SQLite file');
  });

  test('the custom search attributes are registered with their types', async () => {
    const { customAttributes } = await connection.operatorService.listSearchAttributes({
      namespace: server.namespace,
    });
    const indexed: Record<string, number> = { Keyword: KEYWORD, KeywordList: KEYWORD_LIST };
    assert.deepEqual(SEARCH_ATTRIBUTES, {
      PipelineStage: 'Keyword',
      PipelineRun: 'Keyword',
      Corpus: 'Keyword',
      CacheHits: 'KeywordList',
    });
    for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) {
      assert.equal(customAttributes?.[name], indexed[type], `${name} should be a ${type} search attribute`);
    }
  });

  test('the Web UI answers HTTP', async () => {
    const res = await fetch(server.uiUrl);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /<html/i);
  });

  test('a second server on other free ports runs side by side', async () => {
    const second = await startDevServer({ freePorts: true, dbFilename: join(dir, 'other.sqlite') });
    try {
      assert.notEqual(second.address, server.address);
    } finally {
      await second.stop();
    }
    assert.equal(alive(second.pid), false);
  });

  test('a second server on the same SQLite file is refused', async () => {
    await assert.rejects(
      startDevServer({ freePorts: true, dbFilename }),
      (err: unknown) =>
        err instanceof DevServerStartError && /in use by the Temporal dev server pid/.test(err.message),
    );
  });

  test('stop() ends the process and leaves nothing behind', async () => {
    const pid = server.pid;
    assert.equal(alive(pid), true);
    await connection.close();
    await server.stop();
    assert.equal(alive(pid), false, `pid ${pid} still alive after stop()`);
    await server.stop(); // idempotent
    // Same SQLite file again: existing search attributes are accepted.
    server = await startDevServer({ freePorts: true, dbFilename });
    connection = await Connection.connect({ address: server.address });
    const { customAttributes } = await connection.operatorService.listSearchAttributes({
      namespace: server.namespace,
    });
    assert.equal(customAttributes?.PipelineRun, KEYWORD);
  });
});
