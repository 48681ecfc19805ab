import type YAML from 'yaml';
import { lazyRequire } from '../lazy-require.js';

/** Only a YAML config file needs the parser. */
const yaml = lazyRequire<typeof YAML>('yaml');

/**
 * What is wrong where in a config file, with none of its text: the parsers' own messages quote it (yaml the line
 * and a caret, the line before too for a tab; V8 a snippet around the token; an unresolved alias its name, the
 * value after `*`), and the line at fault is often the one holding a password. `line` and `column` count from 1.
 */
export interface SyntaxFault {
  problem: string;
  line?: number;
  column?: number;
}

export type ParsedFile = { value: unknown; fault?: undefined } | { fault: SyntaxFault };

/** Our words for the yaml package's codes: its messages interpolate the file's text (a tag, an escape, a token). */
const YAML_PROBLEMS: Record<YAML.ErrorCode, string> = {
  ALIAS_PROPS: 'an alias with a tag or anchor',
  BAD_ALIAS: 'bad alias or anchor name',
  BAD_COLLECTION_TYPE: 'a tag for another kind of collection',
  BAD_DIRECTIVE: 'unknown or bad % directive',
  BAD_DQ_ESCAPE: 'bad escape sequence in a double-quoted string',
  BAD_INDENT: 'bad indentation',
  BAD_PROP_ORDER: 'an anchor or tag before its - or ? indicator',
  BAD_SCALAR_START: 'a plain value starting with a reserved character (@ or `)',
  BLOCK_AS_IMPLICIT_KEY: 'bad indentation: a mapping nested in a one-line value (a line below indented too far, or a second ": ")',
  BLOCK_IN_FLOW: 'a block mapping or list inside [ ] or { }',
  DUPLICATE_KEY: 'duplicate key',
  IMPOSSIBLE: 'unreadable structure',
  KEY_OVER_1024_CHARS: 'a key longer than 1024 characters',
  MISSING_CHAR: 'a missing character (a closing quote, a ":", a "," or a space)',
  MULTILINE_IMPLICIT_KEY: 'a key spanning lines (a missing ":" or bad indentation)',
  MULTIPLE_ANCHORS: 'more than one anchor on a value',
  MULTIPLE_DOCS: 'more than one document (---)',
  MULTIPLE_TAGS: 'more than one tag on a value',
  NON_STRING_KEY: 'a key that is not a string',
  RESOURCE_EXHAUSTION: 'aliases that expand too far',
  TAB_AS_INDENT: 'a tab used as indentation',
  TAG_RESOLVE_FAILED: 'unresolved tag',
  UNEXPECTED_TOKEN: 'unexpected token',
};

/** 1-based line and column of `offset` in `text`. */
function position(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const lineStart = before.lastIndexOf('\n') + 1;
  return { line: before.split('\n').length, column: offset - lineStart + 1 };
}

function yamlFault(text: string, error: YAML.YAMLError): SyntaxFault {
  return { problem: YAML_PROBLEMS[error.code] ?? `yaml error ${error.code}`, ...position(text, error.pos[0]) };
}

/**
 * YAML as yaml's parse() reads it, but nothing of the text reaches a message or stderr: its errors as faults, its
 * warnings (an unknown `!tag`, which the value is read without) to `warn`, and its console warnings (a collection as a
 * key) silenced, as they print the key.
 */
function parseYaml(text: string, warn: (fault: SyntaxFault) => void): ParsedFile {
  const doc = yaml().parseDocument(text, { prettyErrors: false, logLevel: 'error' });
  if (doc.errors.length > 0) return { fault: yamlFault(text, doc.errors[0]!) };
  for (const warning of doc.warnings) warn(yamlFault(text, warning));
  try {
    return { value: doc.toJS() };
  } catch (err) {
    // toJS throws a ReferenceError naming the alias (`*hunter2`: the value after its `*`) that has no anchor, or
    // one for aliases expanding past its limit: found again here, with a position and without the name.
    let fault: SyntaxFault = { problem: err instanceof ReferenceError ? YAML_PROBLEMS.RESOURCE_EXHAUSTION : 'a document that cannot be read' };
    yaml().visit(doc, {
      Alias: (_key, node) => {
        if (node.resolve(doc) !== undefined) return undefined;
        fault = { problem: 'unresolved alias: no &anchor of its name before it', ...position(text, node.range?.[0] ?? 0) };
        return yaml().visit.BREAK;
      },
    });
    return { fault };
  }
}

const JSON_SPACE = new Set([' ', '\t', '\n', '\r']);
const JSON_NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const JSON_LITERAL = /true|false|null/y;
const JSON_ESCAPE = /\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})/y;

/** Offset just past the string whose opening quote is at `start`, or its fault. */
function jsonString(text: string, start: number): number | { at: number; problem: string } {
  let i = start + 1;
  for (;;) {
    const c = text[i];
    if (c === undefined) return { at: start, problem: 'a string that is not closed' };
    if (c === '"') return i + 1;
    if (c < ' ') return { at: i, problem: 'a control character (a tab or line break) inside a string' };
    if (c === '\\') {
      JSON_ESCAPE.lastIndex = i;
      if (!JSON_ESCAPE.test(text)) return { at: i, problem: 'bad escape sequence in a string' };
      i = JSON_ESCAPE.lastIndex;
    } else i++;
  }
}

/**
 * Where JSON.parse failed, found again by a scan of the grammar: V8's message quotes a snippet of the text, and
 * has an offset for only some problems and only some Node versions. A loop with a stack of open containers, not
 * recursion, so a deeply nested file does not overflow.
 */
function jsonFault(text: string): SyntaxFault | undefined {
  const open: ('{' | '[')[] = [];
  let state: 'value' | 'firstValue' | 'key' | 'firstKey' | 'colon' | 'after' = 'value';
  let i = 0;
  const at = (offset: number, problem: string): SyntaxFault => ({ problem, ...position(text, offset) });
  for (;;) {
    while (i < text.length && JSON_SPACE.has(text[i]!)) i++;
    const c = text[i];
    if (c === undefined) return state === 'after' && open.length === 0 ? undefined : at(i, 'unexpected end of the file');
    // An empty object or array closes where its first key or value would be.
    if ((state === 'firstKey' && c === '}') || (state === 'firstValue' && c === ']')) {
      open.pop();
      state = 'after';
      i++;
      continue;
    }
    switch (state) {
      case 'value':
      case 'firstValue':
        if (c === '{' || c === '[') {
          open.push(c);
          state = c === '{' ? 'firstKey' : 'firstValue';
          i++;
          continue;
        }
        if (c === '"') {
          const end = jsonString(text, i);
          if (typeof end !== 'number') return at(end.at, end.problem);
          i = end;
        } else {
          const token = c === '-' || (c >= '0' && c <= '9') ? JSON_NUMBER : JSON_LITERAL;
          token.lastIndex = i;
          if (!token.test(text)) return at(i, token === JSON_NUMBER ? 'malformed number' : 'unexpected token: a value is a "string", a number, true, false, null, { } or [ ]');
          i = token.lastIndex;
        }
        state = 'after';
        continue;
      case 'firstKey':
      case 'key': {
        if (c !== '"') return at(i, 'unexpected token: a key is a "double-quoted" string');
        const end = jsonString(text, i);
        if (typeof end !== 'number') return at(end.at, end.problem);
        i = end;
        state = 'colon';
        continue;
      }
      case 'colon':
        if (c !== ':') return at(i, 'unexpected token: a ":" after the key');
        i++;
        state = 'value';
        continue;
      case 'after': {
        const container = open.at(-1);
        if (container === undefined) return at(i, 'unexpected token after the end of the document');
        if (c === ',') state = container === '{' ? 'key' : 'value';
        else if (c === (container === '{' ? '}' : ']')) open.pop();
        else return at(i, `unexpected token: a "," or "${container === '{' ? '}' : ']'}"`);
        i++;
      }
    }
  }
}

/**
 * A config file's settings, or what is wrong where, for the error to name without quoting the file (see
 * SyntaxFault). `warn`: problems the YAML parser reads past.
 */
export function parseConfigText(text: string, json: boolean, warn: (fault: SyntaxFault) => void): ParsedFile {
  if (!json) return parseYaml(text, warn);
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return { fault: jsonFault(text) ?? { problem: 'not JSON' } };
  }
}
