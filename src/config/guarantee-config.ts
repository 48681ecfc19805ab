import type { ReplayWindowSetting } from '../checkpoint/replay-window.js';
import type { RelayConfig } from './types.js';

export const GUARANTEES = ['at-least-once', 'exactly-once', 'at-most-once'] as const;
export type Guarantee = (typeof GUARANTEES)[number];

/** The delivery-guarantee settings, read from the validated values (kept apart from RelayConfig's core fields). */
export interface GuaranteeConfig {
  guarantee: Guarantee;
  checkpointTopic: string;
  /** Undefined: not set, so the window recorded in the checkpoint applies. */
  replayWindow: ReplayWindowSetting | undefined;
}

export function guaranteeConfig(config: RelayConfig): GuaranteeConfig {
  return {
    guarantee: (config.values['delivery.guarantee'] as Guarantee | undefined) ?? 'at-least-once',
    checkpointTopic: (config.values['checkpoint.topic'] as string | undefined) ?? 'outbox-relay.checkpoints',
    replayWindow: config.values.replayWindow as ReplayWindowSetting | undefined,
  };
}
