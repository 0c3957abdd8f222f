import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { indexes, planReport, podFailure, shardReport } from '../../../operator/controller/batch/reports.ts';

const terminated = (message: string, exitCode = 0, reason?: string) => ({ exitCode, message, ...(reason ? { reason } : {}) });
const logLine = (fields: Record<string, unknown>) => JSON.stringify({ level: 50, time: 1, pid: 1, ...fields });

function failedPod(state: ReturnType<typeof terminated> | undefined, pod: Partial<NonNullable<V1Pod['status']>> = {}): V1Pod {
  return {
    metadata: { name: 'score-1-x' },
    status: {
      phase: 'Failed',
      ...pod,
      containerStatuses: state
        ? [{ name: 'driver', image: 'x', imageID: '', ready: false, restartCount: 0, state: { terminated: state } }]
        : [],
    },
  };
}

describe('reports', () => {
  it.each([
    ['a plan report', '{"shards":3,"rows":900,"files":2}\n', { shards: 3, rows: 900, files: 2 }],
    [
      'a failed plan report',
      '{"shards":0,"rows":0,"files":0,"code":"MS_ERR_BATCH_INPUT_NOT_FOUND","message":"none"}',
      { shards: 0, rows: 0, files: 0, code: 'MS_ERR_BATCH_INPUT_NOT_FOUND', message: 'none' },
    ],
    ['log text', 'starting\nplanning', undefined],
    ['a log line, not a report', logLine({ rows: 3, shards: 1, files: 1, msg: 'planned' }), undefined],
    ['a report missing a count', '{"shards":3,"rows":900}', undefined],
  ])('plan: %s', (_what, message, want) => {
    expect(planReport(terminated(message))).toEqual(want);
  });

  it.each([
    ['a shard report', '{"shard":2,"rows":10,"errorRows":1,"seconds":0.5}', { shard: 2, rows: 10, errorRows: 1, seconds: 0.5 }],
    [
      'a skipped shard',
      '{"shard":2,"rows":10,"errorRows":0,"seconds":0,"skipped":true}',
      { shard: 2, rows: 10, errorRows: 0, seconds: 0, skipped: true },
    ],
    ['negative rows', '{"shard":2,"rows":-1,"errorRows":0,"seconds":0}', undefined],
  ])('shard: %s', (_what, message, want) => {
    expect(shardReport(terminated(message))).toEqual(want);
  });

  it('reads Indexed Job index lists', () => {
    expect(indexes('0-2,5,7-8')).toEqual([0, 1, 2, 5, 7, 8]);
    expect(indexes('')).toEqual([]);
    expect(indexes(undefined)).toEqual([]);
  });
});

describe('podFailure', () => {
  it.each([
    [
      "the report's code",
      failedPod(terminated('{"shard":1,"rows":0,"errorRows":0,"seconds":1,"code":"MS_ERR_BATCH_STORAGE","message":"down"}', 1)),
      { code: 'MS_ERR_BATCH_STORAGE', message: 'down' },
    ],
    [
      'a coded message',
      failedPod(terminated('MS_ERR_BUNDLE_NOT_FOUND: s3://m/x.zip', 1)),
      { code: 'MS_ERR_BUNDLE_NOT_FOUND', message: 's3://m/x.zip' },
    ],
    [
      'a log tail (no report written): the code and error of its last line',
      failedPod(
        terminated(
          `${logLine({ msg: 'reading' })}\n${logLine({ code: 'MS_ERR_BATCH_STORAGE', err: 'ECONNRESET', msg: 'batch-run failed' })}`,
          1,
          'Error',
        ),
      ),
      { code: 'MS_ERR_BATCH_STORAGE', message: 'the driver container exited with code 1: batch-run failed: ECONNRESET' },
    ],
    [
      'killed for its memory: OOMKilled, whatever the log says',
      failedPod(terminated(logLine({ msg: 'read 100000 rows' }), 137, 'OOMKilled')),
      { code: 'OOMKilled', message: 'the driver container exited with code 137 (OOMKilled): read 100000 rows' },
    ],
    [
      'plain text',
      failedPod(terminated('Segmentation fault', 139, 'Error')),
      { code: 'Error', message: 'the driver container exited with code 139: Segmentation fault' },
    ],
    [
      'the pod evicted before the container ran',
      failedPod(undefined, { reason: 'Evicted', message: 'low on ephemeral storage' }),
      { code: 'Evicted', message: 'low on ephemeral storage' },
    ],
  ])('%s', (_what, pod, want) => {
    expect(podFailure(pod, 'driver')).toEqual(want);
  });
});
