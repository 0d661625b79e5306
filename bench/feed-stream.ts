// What a subscriber of one symbol receives for the recorded traffic, in the entropy encoding
// (contracts/market-entropy.ts): the collector bench's bandwidth section feeds it each symbol's
// ingest batches, as pushed, and it counts the subscriber stream's bytes, every message decoded
// again and compared with the frames it carried.
import { isDeepStrictEqual } from "node:util";
import type { FeedFrame, IngestFrame } from "../contracts/market.ts";
import { EntropyFeedDecoder, EntropyFeedEncoder } from "../contracts/market-entropy.ts";
import { FeedEmulator } from "../scripts/market-fixture-frames.ts";

/** A server → client WebSocket header (unmasked): 2 bytes up to 125 bytes of payload, 4 up to 64 KiB. */
export const serverHeader = (n: number) => (n < 126 ? 2 : n < 65_536 ? 4 : 10);

/**
 * One subscriber's entropy stream per symbol, joined before the first batch (an empty snapshot):
 * bytes of the first batch's message (the initial books) and of the rest (the steady state),
 * server headers included, and the messages' count. Throws if any message decodes differently.
 */
export function entropyStream(bySymbol: Map<string, readonly string[]>): {
  initial: number;
  steady: number;
  steadyMessages: number;
  snapshotMessages: number;
} {
  let initial = 0;
  let steady = 0;
  let steadyMessages = 0;
  let snapshotMessages = 0;
  for (const [symbol, texts] of bySymbol) {
    const feed = new FeedEmulator(symbol);
    // Joined before the first batch: the emulator's snapshot is still the empty one.
    const empty = feed.snapshot();
    const encoder = new EntropyFeedEncoder(empty);
    const decoder = new EntropyFeedDecoder();
    const join = encoder.snapshotMessage(empty);
    if (!join) throw new Error("the encoder refused its own starting snapshot");
    decoder.decode(join);
    snapshotMessages += join.length + serverHeader(join.length);
    for (const [i, text] of texts.entries()) {
      const frames = feed.apply(JSON.parse(text) as IngestFrame);
      if (frames.length === 0) continue;
      const message = encoder.encode(frames);
      const decoded: FeedFrame[] = decoder.decode(message);
      if (!isDeepStrictEqual(decoded, frames))
        throw new Error(
          `${symbol}: message ${i} decoded differently\n${JSON.stringify(frames)}\n${JSON.stringify(decoded)}`,
        );
      const bytes = message.length + serverHeader(message.length);
      if (i === 0) initial += bytes;
      else {
        steady += bytes;
        steadyMessages++;
      }
    }
  }
  return { initial, steady, steadyMessages, snapshotMessages };
}
