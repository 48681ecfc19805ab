import { SETTINGS } from '../../src/config/settings.js';
import { shellWords } from './shell-words.js';

/** Flags of the printed commands that take no value. */
const SWITCHES = new Set(['--force', '--failover-slot']);

/** A raw word's prose punctuation after it, outside any quotes: "relay)," ends the command at "relay". */
const PROSE_END = /[),;]+$/;

/**
 * The settings each `outbox-relay <command>` printed in `text` gives by its flags, keyed as the command line hands
 * them to the loader (SETTINGS' flag to key), in order of appearance. A command's flags end at the first word that
 * is no flag, or at a word ended by prose punctuation; each value is read as a shell reads the word (shellWords).
 */
export function printedSettings(text: string, command: string): Record<string, string>[] {
  const name = `outbox-relay ${command}`;
  const found: Record<string, string>[] = [];
  for (let at = text.indexOf(name); at !== -1; at = text.indexOf(name, at + name.length)) {
    const raw = [...text.slice(at + name.length).matchAll(/(?:\\.|'[^']*'|[^\s'\\])+/g)].map(([word]) => word);
    const given: Record<string, string> = {};
    for (let i = 0; i < raw.length; i += 2) {
      const flag = raw[i]!.replace(PROSE_END, '');
      if (!flag.startsWith('--') || SWITCHES.has(flag)) break;
      const setting = SETTINGS.find((s) => s.flag === flag);
      if (setting === undefined) throw new Error(`${name} printed an unknown flag ${flag}`);
      given[setting.key] = shellWords(raw[i + 1]!.replace(PROSE_END, ''))[0]!;
      if (PROSE_END.test(raw[i + 1]!)) break;
    }
    found.push(given);
  }
  return found;
}

/**
 * Each kafka-acls.sh printed in `text`, as the words a shell hands the tool: its words up to the first one ended by
 * prose punctuation (that punctuation left off), each read as a shell reads it (shellWords).
 */
export function printedAclCommands(text: string): string[][] {
  return [...text.matchAll(/kafka-acls\.sh /g)].map(({ index }) => {
    const raw = [...text.slice(index).matchAll(/(?:\\.|'[^']*'|[^\s'\\])+/g)].map(([word]) => word);
    const end = raw.findIndex((word) => PROSE_END.test(word));
    return shellWords(raw.slice(0, end === -1 ? raw.length : end + 1).join(' ').replace(PROSE_END, ''));
  });
}
