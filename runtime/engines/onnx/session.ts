// One ONNX Runtime session, in the server's thread or in a worker thread: loads a model file and runs flat
// tensors through it. The engine's only contact with onnxruntime-node.
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { msError } from '../../errors.ts';
import type { ElementType, FlatTensor, GraphValue } from './graph.ts';

export interface OnnxSession {
  inputs: readonly GraphValue[];
  outputs: readonly GraphValue[];
  run(feeds: Record<string, FlatTensor>, fetches: readonly string[]): Promise<Record<string, FlatTensor>>;
  release(): Promise<void>;
}

/** Loads the model; a file that is not a valid graph is MS_ERR_PLUGIN_LOAD with ONNX Runtime's reason. */
export async function openSession(path: string, entrypoint: string): Promise<OnnxSession> {
  let session: InferenceSession;
  try {
    // One thread per session: requests run side by side (several worker threads), not one request on all cores.
    session = await InferenceSession.create(path, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
  } catch (err) {
    throw msError('MS_ERR_PLUGIN_LOAD', { entrypoint, detail: `ONNX Runtime: ${(err as Error).message}` }, err);
  }
  return {
    inputs: session.inputMetadata as readonly GraphValue[],
    outputs: session.outputMetadata as readonly GraphValue[],
    async run(feeds, fetches) {
      const ortFeeds: Record<string, Tensor> = {};
      for (const name in feeds) {
        const f = feeds[name] as FlatTensor;
        ortFeeds[name] = new Tensor(f.type, f.data as Float32Array, f.dims);
      }
      let results: InferenceSession.ReturnType;
      try {
        results = await session.run(ortFeeds, fetches as string[]);
      } catch (err) {
        throw msError('MS_ERR_PREDICT_FAILED', { detail: `ONNX Runtime: ${(err as Error).message}` }, err);
      }
      const out: Record<string, FlatTensor> = {};
      for (const name of fetches) {
        const t = results[name] as Tensor;
        out[name] = { type: t.type as ElementType, data: t.data as FlatTensor['data'], dims: [...t.dims] };
      }
      return out;
    },
    release: () => session.release(),
  };
}
