import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import { ConfigError, describeOrigin, loadSettings } from '../../config/load.js';
import { SETTINGS_BY_KEY } from '../../config/settings.js';
import type { Origin } from '../../config/types.js';
import { RelayError } from '../../errors.js';
import { localAddress, probeLiveness, type LivenessAnswer } from '../../ops/liveness-probe.js';
import { EXIT, reportError } from '../exit.js';
import { printJsonResult } from '../json-document.js';
import { addSettingOptions, commandProblems, flagValues } from '../options.js';
import { groupCommand } from './ops-command.js';

/**
 * Counted from this process's start, its own start included (slow on a throttled CPU): the image's HEALTHCHECK
 * has --timeout=5s, and a probe that gives up first says why, where one Docker kills leaves only "Health check
 * exceeded timeout".
 */
const GIVE_UP_AFTER_MS = 4000;
/**
 * The request's own time when the start took (nearly) all of that: with none, a relay that answers at once was
 * reported unreachable without being asked, and Docker restarted a healthy container whose CPU was throttled.
 */
const MIN_PROBE_MS = 1000;

/** Where run reads what health cannot see: a flag given to run is in another process's arguments. */
const WHERE_RUN_READS_IT = `set http.port (and http.host) where health reads them as run does: ${SETTINGS_BY_KEY.get('http.port')!.env}, or the config file named by OUTBOX_RELAY_CONFIG; flags given to run are not seen by health (give it the same --http-port or --config)`;

function fromWhere(key: 'http.port' | 'http.host', origin: Origin, fileName: string | undefined): string {
  return origin === 'default' ? 'the default' : describeOrigin(SETTINGS_BY_KEY.get(key)!, origin, fileName);
}

/** Every answer but 200 is a failure; what it means depends on who answered. */
function unhealthy(answer: Extract<LivenessAnswer, { answered: true }>, source: string): RelayError {
  const wedged = answer.httpStatus === 503;
  return new RelayError('RELAY_UNHEALTHY', `${answer.url} (${source}) answered ${answer.httpStatus}${answer.body ? `: ${answer.body.trim()}` : ''}`, {
    hint: wedged
      ? 'the relay is wedged: streaming, yet nothing heard from its pipeline for too long (docs/metrics.md, /healthz); restart it, and look in its log for what it last did'
      : `that is not the relay's /healthz (it answers 200 or 503): another server listens there; ${WHERE_RUN_READS_IT}`,
    details: { url: answer.url, httpStatus: answer.httpStatus },
  });
}

/**
 * `health`: the image's HEALTHCHECK (Docker cannot read a config file, nor the flags given to run). It finds the
 * port as run does, from the environment and the config file, and says which it probed and where that came from.
 * Every failure exits 1, a configuration refused too: Docker reserves 2.
 */
export function healthCommand(): Command {
  const command = groupCommand(
    'health',
    `Probe the relay on this host: GET /healthz at http.port as run resolves it from the environment and the config file (or this command's flags); exit 0 on 200, else 1 with the reason, the port and where it came from, within ${GIVE_UP_AFTER_MS / 1000} s of its start. The container image's HEALTHCHECK: flags given to run are not seen by it.`,
    ['outbox-relay health', 'OUTBOX_RELAY_CONFIG=/etc/outbox-relay.yaml outbox-relay health', 'outbox-relay health --http-port 8080 --json'],
  );
  command.option('--json', 'print one JSON document for scripts instead of text');
  addSettingOptions(command, 'health');
  return command.action(async (opts: Record<string, unknown>) => {
    const json = opts.json === true;
    try {
      const problems = commandProblems(command);
      // No warnings: run printed them at its start; repeated every 30 s they would bury the one line Docker keeps.
      const settings = problems.check(() => loadSettings(['http.port', 'http.host'], { flags: flagValues(opts), configFile: opts.config as string | undefined, warn: () => undefined }));
      problems.throwIfAny();
      const { values, origins, fileName } = settings!;
      const port = values['http.port'];
      const source = `http.port ${port}, from ${fromWhere('http.port', origins['http.port']!, fileName)}`;
      // Not healthy: nothing can be probed, and a container reported healthy would hide a relay that is wedged.
      if (port === 0) {
        throw new ConfigError(`${source}: the HTTP server is off, so there is no /healthz to probe`, `set http.port to a port (${SETTINGS_BY_KEY.get('http.port')!.env} or the config file), or turn the health check off: docker run --no-healthcheck, or healthcheck: disable: true in Compose`);
      }
      const listen = values['http.host'];
      const host = localAddress(listen);
      const where = host === listen ? `${source}; http.host ${listen}, from ${fromWhere('http.host', origins['http.host']!, fileName)}` : source;
      const answer = await probeLiveness(host, port, Math.round(Math.max(MIN_PROBE_MS, GIVE_UP_AFTER_MS - performance.now())));
      if (!answer.answered) {
        throw new RelayError('RELAY_UNREACHABLE', `no answer from ${answer.url} (${where}): ${answer.reason}`, {
          hint: `check that the relay runs and its log's "health and metrics endpoints listening" line names this address; ${WHERE_RUN_READS_IT}`,
          details: { url: answer.url },
        });
      }
      if (answer.httpStatus !== 200) throw unhealthy(answer, where);
      if (json) printJsonResult({ healthy: true, url: answer.url, httpStatus: answer.httpStatus, port, portSource: fromWhere('http.port', origins['http.port']!, fileName) });
      else process.stdout.write(`healthy: ${answer.url} answered 200 (${where})\n`);
      process.exitCode = EXIT.ok;
    } catch (err) {
      reportError(err, json);
      process.exitCode = EXIT.runtime;
    }
  });
}
