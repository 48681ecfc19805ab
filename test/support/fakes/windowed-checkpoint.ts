import { encodeCheckpoint } from '../../../src/checkpoint/checkpoint.js';
import type { CheckpointClient, CheckpointProducer } from '../../../src/checkpoint/checkpoint-client.js';

/**
 * A checkpoint topic for a mock of checkpoint/create-checkpoint-client.js: slot "s"'s at-least-once checkpoint at
 * 0/9000, recording a 6h replay window. What is written goes to `producer` (taken and dropped by default).
 */
export function windowedCheckpointClient(producer: CheckpointProducer = { send: async () => undefined, close: async () => undefined }): CheckpointClient {
  return {
    createTopic: async () => undefined,
    readAll: async (_topic, onRecord) => {
      onRecord({ key: 's', value: encodeCheckpoint({ slot: 's', lsn: 0x9000n, commitTimeMs: 0, writtenAtMs: 0, guarantee: 'at-least-once', replayWindow: '6h' }), partition: 0 });
      return true;
    },
    producer: () => producer,
  };
}

/** checkpoint/create-checkpoint-client.js for a vi.mock: every client it creates is windowedCheckpointClient(). */
export function windowedCheckpointModule(): { createCheckpointClient: () => CheckpointClient } {
  return { createCheckpointClient: () => windowedCheckpointClient() };
}
