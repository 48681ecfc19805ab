import { describe, expect, it } from 'vitest';
import { runCliSync } from '../support/cli.js';

describe('unknown options: every one, with the settings’ problems, in one error', () => {
  // At most two CLI starts per test, a case each: on a loaded 2-core host one start took seconds, and a test that
  // started seven ran past the 30 s test timeout.
  it('names each unknown option, suggests the nearest flag, and still reads the flags after them (before, the first unknown option only)', () => {
    const result = runCliSync(['run', '--bogus1', 'x', '--kafka-brokerz', 'k:9092', '--bogus2=secret', '--slot', 'bad name!']);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/^outbox-relay: CONFIG_INVALID: 5 settings are invalid:\n/);
    for (const part of [
      "  - unknown option '--bogus1'\n",
      "  - unknown option '--kafka-brokerz' (Did you mean --kafka-brokers?)\n",
      "  - unknown option '--bogus2'\n",
      '  - invalid flag --slot: "bad name!"',
      '  - missing required setting kafka.brokers',
    ]) {
      expect(result.stderr).toContain(part);
    }
    // A mistyped flag's value may be a secret: the option is named, its value not echoed.
    expect(result.stderr).not.toContain('secret');
    // The same fix for each unknown option is given once.
    expect(result.stderr.match(/see outbox-relay run --help/g)).toHaveLength(1);
  });

  it('with --json after the unknown options, the one JSON error object (exit 2)', () => {
    const result = runCliSync(['config', 'check', '--bogus1', 'x', '--bogus2', 'y', '--json', '--slot', 'bad name!']);
    expect(result.status).toBe(2);
    const { error } = JSON.parse(result.stdout) as { error: { code: string; message: string; fix: string } };
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toMatch(/^4 settings are invalid:/);
    for (const part of ["unknown option '--bogus1'", "unknown option '--bogus2'", 'invalid flag --slot: "bad name!"', 'missing required setting kafka.brokers']) expect(error.message).toContain(part);
    expect(error.fix).toContain('see outbox-relay config check --help');
  });

  it('a parse error commander still stops at names the unknown options before it', () => {
    const result = runCliSync(['slot', 'advance', '--bogus', '0/10']);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/^outbox-relay: CONFIG_INVALID: 2 settings are invalid:\n/);
    expect(result.stderr).toContain("  - unknown option '--bogus'\n");
    expect(result.stderr).toContain("  - missing required argument 'lsn'");
  });

  it('a switch given a value is refused as one, not as an unknown option that suggests itself', () => {
    for (const [args, flag] of [[['config', 'check', '--json=true'], '--json'], [['slot', 'drop', '--force=false'], '--force']] as const) {
      const result = runCliSync([...args]);
      expect(result.status).toBe(2);
      expect(result.stderr).toContain(`option '${flag}' is a switch and takes no value`);
      expect(result.stderr).toContain(`fix: give ${flag} alone to turn it on, or leave it out`);
      expect(result.stderr).not.toContain('Did you mean');
    }
  });

  it.for([[['--version=1'], '--version'], [['--help=1'], '--help'], [['slot', '--version=1'], '--version'], [['run', '--version=1'], '--version']] as const)(
    "the program's switches given a value are refused as switches, before a command, after a group and after a command: %s",
    ([args, flag]) => {
      const result = runCliSync([...args]);
      expect(result.status).toBe(2);
      expect(result.stderr).toContain(`option '${flag}' is a switch and takes no value`);
      expect(result.stderr).toContain(`give ${flag} alone to turn it on, or leave it out`);
      expect(result.stderr).not.toMatch(/unknown option|see outbox-relay/);
    },
  );

  it("the program's switch given a value, with --json: the one JSON error object", () => {
    const json = runCliSync(['--version=1', '--json']);
    expect(JSON.parse(json.stdout)).toEqual({ error: { code: 'CONFIG_INVALID', message: "option '--version' is a switch and takes no value", fix: 'give --version alone to turn it on, or leave it out' } });
  });

  it.for([
    [['--bogus=1'], '--bogus', 'outbox-relay'],
    [['slot', '--postgres-urll=postgres://user:s3cret@db/app'], '--postgres-urll', 'outbox-relay slot'],
    [['publication', '--kafka-sasl-passwrd=s3cret', 'create'], '--kafka-sasl-passwrd', 'outbox-relay publication'],
    [['config', '-ps3cret'], '-p', 'outbox-relay config'],
    [['run', '-ps3cret', '--kafka-brokers', 'k:9092'], '-p', 'outbox-relay run'],
  ] as const)('before a command and after a group, an unknown option is named without its value, as after a command (before, commander echoed it whole): %s', ([args, flag, help]) => {
    const result = runCliSync([...args]);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(`unknown option '${flag}'`);
    expect(result.stderr).toContain(`see ${help} --help`);
    expect(result.stderr).not.toContain('s3cret');
    expect(result.stderr).not.toMatch(/unknown option '[^']*=1'/);
  });

  it("an unknown option's suggestion is made for its name, not for the argument whole; with --json, named without its value", () => {
    expect(runCliSync(['config', '--versio=1']).stderr).toContain("unknown option '--versio' (Did you mean --version?)");
    const json = runCliSync(['slot', '--postgres-urll=postgres://user:s3cret@db/app', '--json']);
    expect(JSON.parse(json.stdout)).toEqual({ error: { code: 'CONFIG_INVALID', message: "unknown option '--postgres-urll'", fix: 'see outbox-relay slot --help' } });
  });

  // Before: only '=' ended the name, and `--postgres-url:postgres://user:s3cret@db/app` was echoed whole.
  it('an unknown option is named only up to its first character outside A-Z a-z 0-9 _ . - (as an unknown command), after a command and after a group', () => {
    for (const [args, help] of [[['run', '--postgres-url:postgres://user:s3cret@db/app', '--kafka-brokers', 'k:9092'], 'outbox-relay run'], [['slot', '--postgres-url:postgres://user:s3cret@db/app'], 'outbox-relay slot']] as const) {
      const result = runCliSync([...args]);
      expect(result.status).toBe(2);
      expect(result.stderr).toContain("unknown option '--postgres-url…' (cut at its first ':': the rest may be a value, and is not shown)");
      expect(result.stderr).toContain(`fix: see ${help} --help`);
      expect(result.stderr).not.toContain('s3cret');
    }
  });

  it('a single unknown option is reported as before; --help after one still prints the help', () => {
    const one = runCliSync(['run', '--kafka-brokers', 'k:9092', '--kafka-brokerz', 'x']);
    expect(one.status).toBe(2);
    expect(one.stderr).toBe("outbox-relay: CONFIG_INVALID: unknown option '--kafka-brokerz' (Did you mean --kafka-brokers?)\n  fix: see outbox-relay run --help\n");
    const help = runCliSync(['run', '--bogus', 'x', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage: outbox-relay run [options]');
  });

  // Before: commander echoed the argument whole, `outbox-relay postgres://user:s3cret@db/app` printed the password.
  it.for([[['postgres://user:s3cret@db/app'], 'outbox-relay'], [['slot', 'postgres://user:s3cret@db/app'], 'outbox-relay slot'], [['help', 'postgres://user:s3cret@db/app'], 'outbox-relay']] as const)(
    'an unknown command is named without what may be a value in it (a URL given where a command goes), at the program, after a group and as a help topic: %s',
    ([args, help]) => {
      const result = runCliSync([...args]);
      expect(result.status).toBe(2);
      expect(result.stderr).toContain("unknown command 'postgres…' (cut at its first ':': the rest may be a value, and is not shown)");
      expect(result.stderr).toContain(`fix: see ${help} --help`);
      expect(result.stderr + result.stdout).not.toContain('s3cret');
    },
  );

  it('an unknown command that is a name is shown whole with commander\'s suggestion; with --json, one cut at its first \'=\'', () => {
    expect(runCliSync(['slot', 'lst']).stderr).toBe("outbox-relay: CONFIG_INVALID: unknown command 'lst' (Did you mean list?)\n  fix: see outbox-relay slot --help\n");
    const json = runCliSync(['password=s3cret', '--json']);
    expect(JSON.parse(json.stdout)).toEqual({ error: { code: 'CONFIG_INVALID', message: "unknown command 'password…' (cut at its first '=': the rest may be a value, and is not shown)", fix: 'see outbox-relay --help' } });
  });
});
