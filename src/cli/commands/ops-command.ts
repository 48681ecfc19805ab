import { Command } from 'commander';
import type pg from 'pg';
import { loadConfig } from '../../config/relay-config.js';
import type { RelayConfig } from '../../config/types.js';
import { isRelayError, type ErrorCode, type RelayError } from '../../errors.js';
import { withClient } from '../../ops/connection.js';
import { requirePrimary } from '../../ops/primary.js';
import { republishScope } from '../../source/republish-command.js';
import { EXIT, errorJson, reportError } from '../exit.js';
import { printJsonResult } from '../json-document.js';
import { OpsInterrupt } from '../ops-interrupt.js';
import { exitSoonAfterClose } from '../../process-exit.js';
import type { CommandName } from '../command-settings.js';
import { addSettingOptions, commandProblems, flagValues } from '../options.js';

export interface OpsContext {
  config: RelayConfig;
  client: pg.Client;
  opts: Record<string, unknown>;
  /** Positional arguments after commander's parsing. */
  args: unknown[];
  /** Aborted at a stop signal: what the command waits for besides PostgreSQL is not waited for (OpsInterrupt.signal). */
  signal: AbortSignal;
}

/** What a command prints: `data` with --json, `text` otherwise. An `error` is reported after it and sets the exit code. */
export interface Outcome {
  data: Record<string, unknown> | unknown[];
  text: string;
  error?: RelayError;
  /** The exit code, when the command decides it (`status` reports the relay's state this way); else from the error, or 0. */
  exitCode?: number;
}

// Refusals that a different invocation fixes (a flag, an argument) are usage errors, like a bad setting.
const USAGE_CODES = new Set<ErrorCode>(['CONFIG_INVALID', 'OPERATION_REFUSED']);

/** `reported`: what reportError chose (it knows only CONFIG_INVALID as a usage error). */
function exitCode(err: unknown, reported: number): number {
  if (isRelayError(err) && err.code === 'CONFIRMATION_REQUIRED') return EXIT.confirmationRequired;
  return isRelayError(err) && USAGE_CODES.has(err.code) ? EXIT.usage : reported;
}

function examplesText(lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}`;
}

/**
 * A command group (`slot`, `publication`): commander parse errors must reach main.ts as CommanderErrors, which
 * it maps to exit 2; without exitOverride a subcommand would exit 1 on its own.
 */
export function groupCommand(name: string, description: string, examples: string[]): Command {
  return new Command(name).description(description).addHelpText('after', examplesText(examples)).exitOverride();
}

export interface OpsCommandSpec {
  /** The command's full name: its settings are declared under it in COMMAND_SETTINGS. */
  settings: CommandName;
  name: string;
  description: string;
  examples: string[];
  /**
   * The command creates or changes slots or publications: refused at once on a standby (in recovery). From
   * PostgreSQL 16 on the server itself accepts a slot there, which the relay cannot stream from.
   */
  changes?: true;
  /**
   * What the command still shows when PostgreSQL cannot be reached (PG_CONNECT_FAILED, `failure`): `status`
   * reads the relay and the checkpoint from elsewhere. Without it the command fails with `failure` alone.
   */
  withoutPostgres?: (ctx: Omit<OpsContext, 'client'>, failure: RelayError) => Promise<Outcome>;
}

/**
 * A command that connects to PostgreSQL with the layered settings (flags, env, config file), runs `work` and
 * prints its outcome. Options of its own can be chained onto the returned command.
 */
export function opsCommand(spec: OpsCommandSpec, work: (ctx: OpsContext) => Promise<Outcome>): Command {
  const command = groupCommand(spec.name, spec.description, spec.examples);
  command.option('--json', 'print one JSON document for scripts instead of text');
  addSettingOptions(command, spec.settings);
  return command.action(async () => {
    const opts = command.opts<Record<string, unknown>>();
    const json = opts.json === true;
    let interrupt: OpsInterrupt | undefined;
    try {
      const config = loadConfig({ flags: flagValues(opts), configFile: opts.config as string | undefined, problems: commandProblems(command) });
      interrupt = new OpsInterrupt(spec.settings, config.postgres, json);
      const outcome = await withClient(config.postgres, `a query of outbox-relay ${spec.settings}`, async (client) => {
        interrupt!.attach(client);
        if (spec.changes) await requirePrimary(client, spec.settings);
        return work({ config, client, opts, args: command.processedArgs, signal: interrupt!.signal });
      }, { slot: config.slot, ...republishScope(config) }).catch(async (err: unknown) => {
        const failure = await interrupt!.failure(err);
        if (spec.withoutPostgres && isRelayError(failure) && failure.code === 'PG_CONNECT_FAILED') {
          return spec.withoutPostgres({ config, opts, args: command.processedArgs, signal: interrupt!.signal }, failure);
        }
        throw failure;
      });
      const error = outcome.error;
      if (json) {
        const body = error && !Array.isArray(outcome.data) ? { ...outcome.data, error: errorJson(error) } : outcome.data;
        printJsonResult(body);
      } else {
        process.stdout.write(outcome.text.endsWith('\n') ? outcome.text : `${outcome.text}\n`);
      }
      // With --json the error is part of the document above; a person reads it on stderr.
      const reported = error && !json ? reportError(error) : EXIT.runtime;
      process.exitCode = outcome.exitCode ?? (error ? exitCode(error, reported) : EXIT.ok);
    } catch (err) {
      process.exitCode = exitCode(err, reportError(err, json));
    } finally {
      interrupt?.remove();
      // A call left behind at the signal (status's read of the checkpoint topic) would hold the process up to its timeout.
      if (interrupt?.signal.aborted) exitSoonAfterClose();
    }
  });
}
