/**
 * What a replacement of a kafkajs request module (offset-fetch.ts, txn-offset-commit.ts) takes
 * from kafkajs: the module it replaces, the encoder and decoder, the protocol's error helpers and
 * the API key. Private paths of kafkajs: anything that does not look as expected throws, naming
 * the module, so the patch reports itself as not installed instead of sending odd bytes.
 */
import type { createRequire } from 'node:module';

export type Req = ReturnType<typeof createRequire>;

export interface RequestDeps<P, E, D> {
  original: { versions: string[]; protocol: P };
  Encoder: new () => E;
  Decoder: new (b: Buffer) => D;
  failure(code: number): boolean;
  createErrorFromCode(code: number): Error;
  apiKey: number;
}

/** `encoderMethod`: an Encoder method the new versions need (older kafkajs builds lack some). */
export function requestDeps<P, E, D>(req: Req, base: string, apiName: string, encoderMethod: string): RequestDeps<P, E, D> {
  const original = req(base) as { versions: string[]; protocol: P };
  const Encoder = req('kafkajs/src/protocol/encoder.js') as new () => E;
  const Decoder = req('kafkajs/src/protocol/decoder.js') as new (b: Buffer) => D;
  const { failure, createErrorFromCode } = req('kafkajs/src/protocol/error.js') as { failure(code: number): boolean; createErrorFromCode(code: number): Error };
  const apiKey = (req('kafkajs/src/protocol/requests/apiKeys.js') as Record<string, unknown>)[apiName];
  if (typeof original?.protocol !== 'function' || !Array.isArray(original.versions) || typeof apiKey !== 'number' ||
    typeof (Encoder.prototype as Record<string, unknown>)[encoderMethod] !== 'function' || typeof (Decoder.prototype as Record<string, unknown>).readTaggedFields !== 'function') {
    throw new Error(`${base} or kafkajs's encoder/decoder do not look as expected`);
  }
  return { original, Encoder, Decoder, failure, createErrorFromCode, apiKey };
}
