import { beforeEach } from 'vitest';
import { printRelayLogsOnFailure } from './relay-process.js';

beforeEach((ctx) => printRelayLogsOnFailure(ctx.onTestFailed));
