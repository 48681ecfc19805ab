#!/usr/bin/env node
// npm's postinstall: three changes to the librdkafka client's addon (@confluentinc/kafka-javascript 1.10.1), then
// a recompile of the addon alone (a few seconds; the bundled librdkafka is kept). Measured in docs/benchmarks.md
// ("Encoded headers and lean delivery reports").
//
// 1. Encoded headers. The binding converts a header array one object at a time (property names read, key and
//    value copied into std::strings, a vector of copies grown one by one, then copied again into librdkafka):
//    about 0.75 µs per header, ~6 µs of a record with the relay's eight. produce() now also takes one Buffer,
//    read straight into librdkafka's header list. The format (src/sink/encoded-headers.ts writes it): u32 BE byte
//    length of the rest, then per header u32 BE name length, name (UTF-8), u32 BE value length, value. The
//    addon gains `outboxEncodedHeaders()` (the format's version).
// 2. Lean delivery reports. Each report became an object of seven properties with a copy of the topic name and
//    of the key (an external Buffer with a finalizer). `producer.outboxLeanReports()`, called before connect,
//    makes that producer's reports carry the error and the opaque only: what the relay reads. Other producers
//    of the process (the KafkaJS-compatible layer reads offsets) keep full reports.
// 3. Batched reports. Each report was one call into JavaScript (node::MakeCallback, then the binding's wrapper and
//    an EventEmitter emit): 1.1 µs of CPU a record in the bench's 100-row drain (docs/benchmarks.md). A lean
//    report without an error now goes with the others of the same flush (up to 100) as one `delivery-report`
//    event whose report is `{ outboxOpaques: [...] }`; a lean report with an error still goes alone, with its
//    error. The addon gains `outboxBatchedReports()`.
//
// The relay uses 1 and 2 only when the loaded addon has their methods, and takes reports in either shape
// (src/sink/rdkafka-produce.ts), so an unpatched addon still works, slower, with a warning. Idempotent: patched
// sources are left as they are, and the addon is rebuilt only when the loaded one lacks the methods. A client whose sources do not match (another version) is
// left unpatched, with a warning; test/integration/kafka.rdkafka-sink.test.ts asserts this repository's is patched.
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
const src = (file) => join(clientDir, 'src', file);
if (!existsSync(src('producer.cc'))) {
  say(`${src('producer.cc')} is absent (sources removed after the build); nothing to do`);
  process.exit(0);
}

const MARK = '// outbox-relay (2):';
/** What the first version of this patch wrote: sources it patched need the pristine package again. */
const EARLIER_MARK = '// outbox-relay:';
const DECODER = `${MARK} encoded headers (scripts/patch-kafka-client.mjs).
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

${MARK} lean reports without an error reach JavaScript in batches.
static NAN_METHOD(OutboxBatchedReports) {
  info.GetReturnValue().Set(Nan::True());
}

${MARK} lean delivery reports for this producer; call before connect.
NAN_METHOD(Producer::NodeOutboxLeanReports) {
  Producer* producer = ObjectWrap::Unwrap<Producer>(info.This());
  producer->m_dr_cb.m_outbox_lean = true;
  info.GetReturnValue().Set(Nan::True());
}

Nan::Persistent<v8::Function> Producer::constructor;
`;

/** Per file, [anchor, replacement]: each anchor must occur exactly once in the upstream source. */
const EDITS = {
  'producer.cc': [
    ['Nan::Persistent<v8::Function> Producer::constructor;\n', DECODER],
    [
      '  Nan::SetPrototypeMethod(tpl, "poll", NodePoll);\n',
      '  Nan::SetPrototypeMethod(tpl, "poll", NodePoll);\n  Nan::SetPrototypeMethod(tpl, "outboxEncodedHeaders", OutboxEncodedHeaders);\n' +
      '  Nan::SetPrototypeMethod(tpl, "outboxLeanReports", NodeOutboxLeanReports);\n' +
      '  Nan::SetPrototypeMethod(tpl, "outboxBatchedReports", OutboxBatchedReports);\n',
    ],
    [
      '  std::vector<RdKafka::Headers::Header> headers;\n  if (info.Length() > 6 && !info[6]->IsUndefined()) {',
      `  ${MARK} encoded headers, a Buffer instead of the array of single-key objects.
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
  ],
  'producer.h': [['  static NAN_METHOD(NodeProduce);\n', `  static NAN_METHOD(NodeProduce);\n  ${MARK} lean delivery reports\n  static NAN_METHOD(NodeOutboxLeanReports);\n`]],
  'callbacks.h': [
    [
      '  DeliveryReport(RdKafka::Message &, bool);\n',
      `  ${MARK} the third argument: a lean report (error and opaque only)\n  DeliveryReport(RdKafka::Message &, bool, bool outbox_lean = false);\n  bool outbox_lean;\n`,
    ],
    ['  void SendMessageBuffer(bool dr_copy_payload);\n', `  void SendMessageBuffer(bool dr_copy_payload);\n  ${MARK} lean delivery reports\n  bool m_outbox_lean = false;\n`],
  ],
  'callbacks.cc': [
    [
      'DeliveryReport::DeliveryReport(RdKafka::Message &message, bool include_payload) :  // NOLINT\n  m_include_payload(include_payload) {\n',
      'DeliveryReport::DeliveryReport(RdKafka::Message &message, bool include_payload, bool lean) :  // NOLINT\n  m_include_payload(include_payload), outbox_lean(lean) {\n',
    ],
    ['  topic_name = message.topic_name();\n', `  ${MARK} no topic and key copies for a lean report\n  if (!outbox_lean) topic_name = message.topic_name();\n`],
    ['  if (message.key_pointer()) {\n', '  if (!outbox_lean && message.key_pointer()) {\n'],
    [
      '  std::vector<DeliveryReport> events_list;\n',
      `  std::vector<DeliveryReport> events_list;
  ${MARK} the opaques of this flush's lean reports without an error, dispatched together after the loop.
  v8::Local<v8::Array> outbox_opaques;
  uint32_t outbox_count = 0;
`,
    ],
    [
      '    Local<Object> jsobj(Nan::New<Object>());\n',
      `    ${MARK} a lean report without an error: its opaque joins the batch.
    if (event.outbox_lean && !event.is_error) {
      if (outbox_count == 0) outbox_opaques = Nan::New<v8::Array>();
      Nan::Set(outbox_opaques, outbox_count++, OutboxTakeOpaque(event.opaque));
      continue;
    }

    Local<Object> jsobj(Nan::New<Object>());

    ${MARK} a lean report with an error: the error and the opaque.
    if (event.outbox_lean) {
      if (event.opaque) Nan::Set(jsobj, Nan::New("opaque").ToLocalChecked(), OutboxTakeOpaque(event.opaque));
      argv[1] = jsobj;
      Dispatch(argc, argv);
      continue;
    }
`,
    ],
    ['  DeliveryReport msg(message, m_dr_msg_cb);\n', '  DeliveryReport msg(message, m_dr_msg_cb, m_outbox_lean);\n'],
    [
      'void DeliveryReportDispatcher::Flush() {\n',
      `${MARK} a lean report's opaque as a JavaScript value (undefined if produce() had none); frees its handle.
static v8::Local<v8::Value> OutboxTakeOpaque(void* opaque) {
  if (opaque == NULL) return Nan::Undefined();
  Nan::Persistent<v8::Value>* persistent = static_cast<Nan::Persistent<v8::Value>*>(opaque);
  v8::Local<v8::Value> value = Nan::New(*persistent);
  persistent->Reset();
  delete persistent;
  return value;
}

void DeliveryReportDispatcher::Flush() {
`,
    ],
    [
      '    Dispatch(argc, argv);\n  }\n  if (outstanding_event_count > events_list.size()) {\n',
      `    Dispatch(argc, argv);
  }
  if (outbox_count > 0) {
    v8::Local<v8::Object> batch = Nan::New<v8::Object>();
    Nan::Set(batch, Nan::New("outboxOpaques").ToLocalChecked(), outbox_opaques);
    v8::Local<v8::Value> argv[2] = { Nan::Null(), batch };
    Dispatch(2, argv);
  }
  if (outstanding_event_count > events_list.size()) {
`,
    ],
  ],
};

const version = JSON.parse(readFileSync(join(clientDir, 'package.json'), 'utf8')).version;
const texts = Object.fromEntries(Object.keys(EDITS).map((file) => [file, readFileSync(src(file), 'utf8')]));
const pending = Object.keys(EDITS).filter((file) => !texts[file].includes(MARK));
if (pending.some((file) => texts[file].includes(EARLIER_MARK))) {
  say(`WARNING: the client's sources carry an earlier version of this patch and are left as they are: the relay runs without batched delivery reports. Reinstall the client to patch it afresh: rm -rf ${clientDir} && npm ci`);
  process.exit(0);
}
if (pending.length > 0) {
  // All or nothing: every anchor of every file is checked before any file is written.
  const missing = pending.flatMap((file) => EDITS[file].filter(([anchor]) => texts[file].split(anchor).length !== 2).map(() => file));
  if (missing.length > 0 || pending.length !== Object.keys(EDITS).length) {
    say(`WARNING: the sources of client ${version} do not match the patch (${missing.length > 0 ? `anchors differ in ${[...new Set(missing)].join(', ')}` : 'partly patched already'}); ` +
      'left as they are, so the relay sends headers and takes reports the slower way. Update scripts/patch-kafka-client.mjs for this version.');
    process.exit(0);
  }
  for (const file of pending) {
    let text = texts[file];
    for (const [anchor, replacement] of EDITS[file]) text = text.replace(anchor, () => replacement);
    writeFileSync(src(file), text);
  }
  say(`patched ${pending.join(', ')} (client ${version})`);
}

const addon = join(clientDir, 'build', 'Release', 'confluent-kafka-javascript.node');
// False as well when the addon is absent or fails to load: then it is built.
const loaded = () => {
  try {
    const { prototype } = require(addon).Producer;
    return ['outboxEncodedHeaders', 'outboxLeanReports', 'outboxBatchedReports'].every((method) => typeof prototype[method] === 'function');
  } catch {
    return false;
  }
};
if (loaded()) {
  say('the addon is patched already');
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
  const fix = 'It needs a C++ toolchain, python3 and the OpenSSL/zlib headers: run `bash scripts/install-prerequisites.sh`, then `npm ci` again.';
  if (!configured) {
    // A prebuilt addon was installed and still works: the relay runs it, slower, and says so when it starts.
    say(`WARNING: the client could not be rebuilt from source (node-gyp's output above); the relay runs its prebuilt addon, unpatched. ${fix}`);
    process.exit(0);
  }
  // The install compiled the client here, so the toolchain is present: a failure is a defect of this patch.
  console.error(`patch-kafka-client: error: the patched addon did not compile (node-gyp's output above). ${fix}`);
  process.exit(1);
}
say(`addon built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
