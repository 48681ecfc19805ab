#!/usr/bin/env node
// npm's postinstall: teaches the librdkafka client (@confluentinc/kafka-javascript) to take a record's headers as
// one pre-encoded Buffer, then recompiles its addon (only producer.cc; the bundled librdkafka is kept).
//
// Why: the binding converts a header array one object at a time (property names read, key and value copied into
// std::strings, a vector of copies grown one by one, then copied again into librdkafka): about 0.75 µs per header,
// ~6 µs of a record's ~14 µs with the relay's eight headers (docs/benchmarks.md, "Where the CPU goes"). The
// encoded form is read straight into librdkafka's header list.
//
// The format (src/sink/encoded-headers.ts writes it): u32 BE byte length of the rest, then per header u32 BE name
// length, name (UTF-8), u32 BE value length, value. The addon gains `outboxEncodedHeaders()` (the format's
// version) so that the relay uses the Buffer only with an addon that reads it, and the array form otherwise.
//
// Idempotent: a patched source is left as it is, and the addon is rebuilt only when the loaded one lacks the
// method. A client whose source does not match (another version) is left unpatched, with a warning: the relay
// then runs the slower array form (test/integration/relay.rdkafka.test.ts asserts this repository gets the fast one).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const say = (msg) => console.log(`patch-kafka-client: ${msg}`);

let clientDir;
try {
  clientDir = dirname(require.resolve('@confluentinc/kafka-javascript/package.json'));
} catch {
  say('@confluentinc/kafka-javascript is not installed; nothing to do');
  process.exit(0);
}
const source = join(clientDir, 'src', 'producer.cc');
if (!existsSync(source)) {
  say(`${source} is absent (sources removed after the build); nothing to do`);
  process.exit(0);
}

const MARK = '// outbox-relay: encoded headers';
const DECODER = `${MARK} (scripts/patch-kafka-client.mjs).
static uint32_t OutboxReadU32(const unsigned char* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
    (static_cast<uint32_t>(p[2]) << 8) | static_cast<uint32_t>(p[3]);
}

// NULL when the buffer is malformed.
static RdKafka::Headers* OutboxDecodeHeaders(v8::Local<v8::Value> buffer) {
  const unsigned char* p =
    reinterpret_cast<const unsigned char*>(node::Buffer::Data(buffer));
  const size_t size = node::Buffer::Length(buffer);
  if (size < 4 || OutboxReadU32(p) > size - 4) return NULL;
  const size_t end = 4 + OutboxReadU32(p);
  RdKafka::Headers* headers = RdKafka::Headers::create();
  size_t at = 4;
  while (at < end) {
    if (end - at < 4) break;
    const size_t name_len = OutboxReadU32(p + at);
    at += 4;
    if (end - at < name_len || end - at - name_len < 4) break;
    const std::string name(reinterpret_cast<const char*>(p + at), name_len);
    at += name_len;
    const size_t value_len = OutboxReadU32(p + at);
    at += 4;
    if (end - at < value_len) break;
    headers->add(name, p + at, value_len);
    at += value_len;
  }
  if (at != end) {
    delete headers;
    return NULL;
  }
  return headers;
}

static NAN_METHOD(OutboxEncodedHeaders) {
  info.GetReturnValue().Set(Nan::New<v8::Number>(1));
}

Nan::Persistent<v8::Function> Producer::constructor;
`;

/** [anchor, replacement]: each anchor must occur exactly once in the upstream source. */
const EDITS = [
  ['Nan::Persistent<v8::Function> Producer::constructor;\n', DECODER],
  [
    '  Nan::SetPrototypeMethod(tpl, "poll", NodePoll);\n',
    '  Nan::SetPrototypeMethod(tpl, "poll", NodePoll);\n  Nan::SetPrototypeMethod(tpl, "outboxEncodedHeaders", OutboxEncodedHeaders);\n',
  ],
  [
    '  std::vector<RdKafka::Headers::Header> headers;\n  if (info.Length() > 6 && !info[6]->IsUndefined()) {',
    `  ${MARK}: a Buffer instead of the array of single-key objects.
  RdKafka::Headers* encoded_headers = NULL;
  if (info.Length() > 6 && node::Buffer::HasInstance(info[6])) {
    encoded_headers = OutboxDecodeHeaders(info[6]);
    if (encoded_headers == NULL) {
      delete static_cast<Nan::Persistent<v8::Value>*>(opaque);
      delete key;
      return Nan::ThrowError("Encoded headers are malformed");
    }
  }

  std::vector<RdKafka::Headers::Header> headers;
  if (encoded_headers == NULL && info.Length() > 6 && !info[6]->IsUndefined()) {`,
  ],
  [
    '    RdKafka::Headers *rd_headers = RdKafka::Headers::create(headers);\n',
    '    RdKafka::Headers *rd_headers = encoded_headers != NULL ?\n      encoded_headers : RdKafka::Headers::create(headers);\n',
  ],
  ['    // First parameter is a topic OBJECT\n', '    // First parameter is a topic OBJECT\n    delete encoded_headers;\n'],
];

const version = JSON.parse(readFileSync(join(clientDir, 'package.json'), 'utf8')).version;
let text = readFileSync(source, 'utf8');
if (!text.includes(MARK)) {
  const missing = EDITS.filter(([anchor]) => text.split(anchor).length !== 2);
  if (missing.length > 0) {
    say(`WARNING: ${source} (client ${version}) does not match the patch (${missing.length} of ${EDITS.length} anchors differ); ` +
      'left unpatched, so the relay sends headers through the slower array form. Update scripts/patch-kafka-client.mjs for this version.');
    process.exit(0);
  }
  for (const [anchor, replacement] of EDITS) text = text.replace(anchor, () => replacement);
  writeFileSync(source, text);
  say(`patched ${source} (client ${version})`);
}

const addon = join(clientDir, 'build', 'Release', 'confluent-kafka-javascript.node');
const loaded = () => {
  try {
    return typeof require(addon).Producer.prototype.outboxEncodedHeaders === 'function';
  } catch {
    return false;
  }
};
if (existsSync(addon) && loaded()) {
  say('the addon already reads encoded headers');
  process.exit(0);
}

// npm passes its own node-gyp to lifecycle scripts; otherwise the one bundled with npm.
const nodeGyp = process.env.npm_config_node_gyp ?? join(dirname(require.resolve('npm/package.json', { paths: [join(process.execPath, '..', '..', 'lib', 'node_modules')] })), 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
// A tree configured by the install (build/config.gypi) only recompiles the addon; a prebuilt binary has none, so
// everything is configured and built, librdkafka included (minutes).
const configured = existsSync(join(clientDir, 'build', 'config.gypi'));
const started = Date.now();
say(configured ? 'recompiling the addon' : 'no build tree (a prebuilt addon): building the client from source');
try {
  // Quiet unless it fails: upstream's compiler warnings say nothing about this patch.
  execFileSync(process.execPath, [nodeGyp, configured ? 'build' : 'rebuild', '-j', 'max'], { cwd: clientDir, stdio: 'pipe' });
} catch (err) {
  process.stderr.write(err.stderr ?? '');
  console.error('patch-kafka-client: error: the addon did not compile (node-gyp\'s output above). It needs a C++ toolchain, ' +
    'python3 and the OpenSSL/zlib headers: run `bash scripts/install-prerequisites.sh`, then `npm ci` again.');
  process.exit(1);
}
say(`addon built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
