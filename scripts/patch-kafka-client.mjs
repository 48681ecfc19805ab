#!/usr/bin/env node
// npm's postinstall: six changes to the librdkafka client's addon (@confluentinc/kafka-javascript 1.10.1) and one
// to its bundled librdkafka, then a recompile of the changed file and the addon (seconds). Measured in
// docs/benchmarks.md ("Encoded headers and lean delivery reports", "Less heap per event, batched delivery reports",
// "One native call per batch", "Where the CPU goes at 1k events/s", "The busy loop in librdkafka").
//
// 1. A batch in one call. The binding's produce() takes one record: per record a call through its JavaScript
//    wrapper, the topic name and the key copied into std::strings, the topic looked up, the headers converted one
//    object at a time (property names read, key and value copied into std::strings, a vector of copies, then
//    copied again into librdkafka: about 0.75 µs per header), and a persistent handle for the opaque.
//    `producer.outboxProduceBatch(topic, values, keys, headers, timestamps, id)` produces a whole run of records
//    to one topic with librdkafka's C API: the topic handle taken once, each record's headers read from one
//    Buffer of encoded sets (src/sink/encoded-headers.ts writes them: per record u32 BE byte length of the rest,
//    then per header u32 BE name length, name (UTF-8), u32 BE value length, value) straight into librdkafka's
//    header list, and the batch's id as every record's opaque, a tagged integer in the pointer instead of a
//    handle. It stops at the first record librdkafka refuses and returns [records produced, error code].
// 2. Lean delivery reports. Each report became an object of seven properties with a copy of the topic name and
//    of the key (an external Buffer with a finalizer). `producer.outboxLeanReports()`, called before connect,
//    makes that producer's reports carry the error and the opaque only: what the relay reads. Other producers
//    of the process (the KafkaJS-compatible layer reads offsets) keep full reports.
// 3. Batched reports. Each report was one call into JavaScript (node::MakeCallback, then the binding's wrapper and
//    an EventEmitter emit): 1.1 µs of CPU a record in the bench's 100-row drain (docs/benchmarks.md). A lean
//    report without an error now goes with the others of the same flush (up to 100) as one `delivery-report`
//    event whose report is `{ outboxOpaques: [...] }`; a lean report with an error still goes alone, with its
//    error.
// 4. Reports served on the event loop. The relay had librdkafka's background thread serve the producer's main
//    queue (setPollInBackground): per report the broker thread woke that thread, which woke the event loop.
//    `producer.outboxPollOnLoop()`, called after connect, instead has the broker thread wake the event loop
//    itself (rd_kafka_queue_cb_event_enable, as the binding's consumer does for its queue), which then serves the
//    queue and dispatches the reports in the same turn: one thread and one wake-up less per report.
// 5. No busy loop in librdkafka while the idempotent producer waits for an answer. Its broker thread sends the
//    next ProduceRequest of a partition only while fewer than 5 of its *messages* are in flight (the limit meant
//    for requests is compared with a message count), so with full batches one request is in flight at a time;
//    meanwhile, once the queued messages' linger.ms has passed, it still set its wake-up to now and polled its
//    socket with a zero timeout until the answer came: a core at 100 % for as long as the broker took (a hung
//    broker: until the request timed out). On a host whose cores the broker shares that starved the broker and
//    lengthened the very wait it spun on (docs/benchmarks.md, "The busy loop in librdkafka"). The patch leaves
//    the wake-up alone while the partition cannot send for that reason, as it already did while the connection
//    was down: the answer's arrival on the socket wakes the thread. While a partition drains for a leader change
//    the old behaviour stays (those answers reach another broker thread, which would not wake this one). What
//    is sent, and when, is unchanged. librdkafka is recompiled (one file, seconds) and, as its object files were
//    kept, relinked into the addon.
// 6. An exit that does not wait. Node's process.exit() first lets every job of libuv's thread pool finish, and the
//    binding runs its blocking calls there (connect, getMetadata, flush, the admin and consumer calls), each up to
//    its timeout: with a broker that stopped answering, an exit came 29.5 s after process.exit(1) while a
//    getMetadata (timeout 30 s) was under way. `Producer.outboxExit(code)`, a static method, ends the process at
//    once (std::_Exit): src/process-exit.ts uses it for the exits that must not wait (a second signal, the shutdown
//    watchdog), after their log line is written (synchronously).
// 7. Fatal error events that say why. librdkafka's C++ layer turns a fatal error event (ERR__FATAL) into the error
//    that made the producer unusable, with librdkafka's reason and a fatal flag; the binding kept only that code's
//    generic name as the event's message, without the code, the reason or the flag (and the JavaScript wrapper cut
//    the name to its second word group). A fatal error event now carries `{ message, code, isFatal: true }`, so
//    that the relay can name the cause: brokers without the idempotent producer, a principal without WRITE on any
//    topic (src/sink/rdkafka-errors.ts, lostProducerError). Other error events are as they were.
//
// The relay uses the first three only when the loaded addon has both their methods, and takes reports in either
// shape (src/sink/rdkafka-produce.ts), so an unpatched addon still works, slower, with a warning; without the
// fourth it serves reports on librdkafka's background thread (src/sink/rdkafka-sink.ts). Idempotent: patched
// sources are left as they are, and the addon is rebuilt only when the loaded one lacks the methods. A client
// whose sources do not match (another version) is left unpatched, with a warning;
// test/integration/kafka.rdkafka-sink.test.ts asserts this repository's is patched, and relay.outage.test.ts that
// librdkafka's broker thread does not spin (change 5).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

const MARK = '// outbox-relay (7):';
/** What earlier versions of this patch wrote: sources they patched need the pristine package again. */
const EARLIER_MARKS = ['// outbox-relay:', '// outbox-relay (2):', '// outbox-relay (3):', '// outbox-relay (4):', '// outbox-relay (6):'];
/** Compiled into the addon by change 7, which adds no method to look for. */
const FATAL_EVENTS_MARKER = 'outbox-relay (7): fatal error events carry their code and reason';
const DECODER = `${MARK} one call produces a batch (scripts/patch-kafka-client.mjs).
static uint32_t OutboxReadU32(const unsigned char* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
    (static_cast<uint32_t>(p[2]) << 8) | static_cast<uint32_t>(p[3]);
}

// One record's headers from the batch's encoded sets, at *at, which moves past them. NULL with *ok set when the
// set is empty (no header list) or, *ok cleared, malformed.
static rd_kafka_headers_t* OutboxDecodeHeaders(const unsigned char* p, size_t size, size_t* at, bool* ok) {
  *ok = false;
  if (size - *at < 4 || OutboxReadU32(p + *at) > size - *at - 4) return NULL;
  const size_t end = *at + 4 + OutboxReadU32(p + *at);
  size_t i = *at + 4;
  rd_kafka_headers_t* headers = i == end ? NULL : rd_kafka_headers_new(8);
  while (i < end) {
    if (end - i < 4) break;
    const size_t name_len = OutboxReadU32(p + i);
    i += 4;
    if (end - i < name_len || end - i - name_len < 4) break;
    const char* name = reinterpret_cast<const char*>(p + i);
    i += name_len;
    const size_t value_len = OutboxReadU32(p + i);
    i += 4;
    if (end - i < value_len) break;
    rd_kafka_header_add(headers, name, name_len, p + i, value_len);
    i += value_len;
  }
  if (i != end) {
    if (headers != NULL) rd_kafka_headers_destroy(headers);
    return NULL;
  }
  *at = end;
  *ok = true;
  return headers;
}

// outboxProduceBatch(topic, values, keys, headers, timestamps, id): produces values[i] with keys[i] (string,
// Buffer or null), the i-th encoded header set of \`headers\` and timestamps[i] (when \`timestamps\` is an array), in
// order, each with the batch's id as its opaque (a tagged integer, not a handle: lean reports give it back as a
// number). Stops at the first record librdkafka refuses. Returns [records produced, error code of the refusal or 0].
NAN_METHOD(Producer::NodeOutboxProduceBatch) {
  Nan::HandleScope scope;
  Producer* producer = ObjectWrap::Unwrap<Producer>(info.This());
  if (info.Length() < 6 || !info[0]->IsString() || !info[1]->IsArray() || !info[2]->IsArray() ||
      !node::Buffer::HasInstance(info[3]) || !info[5]->IsUint32()) {
    return Nan::ThrowError("outboxProduceBatch(topic, values, keys, headers, timestamps, id): wrong arguments");
  }
  if (!producer->m_dr_cb.m_outbox_lean) {
    return Nan::ThrowError("outboxProduceBatch needs lean delivery reports: call outboxLeanReports() before connect");
  }
  v8::Local<v8::Context> context = Nan::GetCurrentContext();
  v8::Local<v8::Array> values = info[1].As<v8::Array>();
  v8::Local<v8::Array> keys = info[2].As<v8::Array>();
  const bool has_timestamps = info[4]->IsArray();
  v8::Local<v8::Array> timestamps = has_timestamps ? info[4].As<v8::Array>() : v8::Local<v8::Array>();
  const uint32_t count = values->Length();
  if (keys->Length() != count || (has_timestamps && timestamps->Length() != count)) {
    return Nan::ThrowError("outboxProduceBatch: values, keys and timestamps differ in length");
  }
  const unsigned char* header_sets = reinterpret_cast<const unsigned char*>(node::Buffer::Data(info[3]));
  const size_t header_bytes = node::Buffer::Length(info[3]);
  size_t header_at = 0;
  void* opaque = reinterpret_cast<void*>((static_cast<uintptr_t>(Nan::To<uint32_t>(info[5]).FromJust()) << 1) | 1);
  Nan::Utf8String topic_name(info[0]);
  static char empty[1];

  uint32_t produced = 0;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__STATE;
  if (producer->IsConnected()) {
    scoped_shared_read_lock lock(producer->m_connection_lock);
    rd_kafka_topic_t* topic = NULL;
    if (producer->IsConnected()) {
      topic = rd_kafka_topic_new(producer->m_client->c_ptr(), *topic_name, NULL);
      err = topic == NULL ? rd_kafka_last_error() : RD_KAFKA_RESP_ERR_NO_ERROR;
    }
    for (; topic != NULL && produced < count; produced++) {
      v8::Local<v8::Value> value = values->Get(context, produced).ToLocalChecked();
      v8::Local<v8::Value> key = keys->Get(context, produced).ToLocalChecked();
      const char* value_data = NULL;
      size_t value_len = 0;
      if (node::Buffer::HasInstance(value)) {
        value_data = node::Buffer::Data(value);
        value_len = node::Buffer::Length(value);
        // An empty value is not a null one.
        if (value_data == NULL) value_data = empty;
      } else if (!value->IsNull()) {
        err = RD_KAFKA_RESP_ERR__INVALID_ARG;
        break;
      }
      if (!key->IsString() && !node::Buffer::HasInstance(key) && !key->IsNull() && !key->IsUndefined()) {
        err = RD_KAFKA_RESP_ERR__INVALID_ARG;
        break;
      }
      int64_t timestamp = 0;
      if (has_timestamps) {
        v8::Local<v8::Value> ts = timestamps->Get(context, produced).ToLocalChecked();
        if (ts->IsNumber()) timestamp = static_cast<int64_t>(ts.As<v8::Number>()->Value());
      }
      bool ok;
      rd_kafka_headers_t* headers = OutboxDecodeHeaders(header_sets, header_bytes, &header_at, &ok);
      if (!ok) {
        err = RD_KAFKA_RESP_ERR__INVALID_ARG;
        break;
      }
      // A string key as UTF-8 on the stack (Nan::Utf8String's 1 KiB buffer; an empty string stands in for the
      // other kinds, so nothing else is converted); a Buffer is read in place. librdkafka copies either.
      Nan::Utf8String key_text(key->IsString() ? key : Nan::EmptyString().As<v8::Value>());
      const bool binary = node::Buffer::HasInstance(key);
      const char* key_data = key->IsString() ? *key_text : binary ? node::Buffer::Data(key) : NULL;
      const size_t key_len = key->IsString() ? key_text.length() : binary ? node::Buffer::Length(key) : 0;
      err = rd_kafka_producev(producer->m_client->c_ptr(), RD_KAFKA_V_RKT(topic),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(const_cast<char*>(value_data), value_len),
        RD_KAFKA_V_KEY(key_data, key_len), RD_KAFKA_V_TIMESTAMP(timestamp),
        RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        // A refused record's headers stay ours.
        if (headers != NULL) rd_kafka_headers_destroy(headers);
        break;
      }
    }
    if (topic != NULL) rd_kafka_topic_destroy(topic);
  }
  v8::Local<v8::Array> result = Nan::New<v8::Array>(2);
  Nan::Set(result, 0, Nan::New<v8::Number>(produced));
  Nan::Set(result, 1, Nan::New<v8::Number>(static_cast<int>(err)));
  info.GetReturnValue().Set(result);
}

${MARK} lean delivery reports for this producer; call before connect.
NAN_METHOD(Producer::NodeOutboxLeanReports) {
  Producer* producer = ObjectWrap::Unwrap<Producer>(info.This());
  producer->m_dr_cb.m_outbox_lean = true;
  info.GetReturnValue().Set(Nan::True());
}

${MARK} the main queue (delivery reports, errors, logs) served on the event loop. librdkafka calls this from the
// thread that put an element on the queue while it was empty; the dispatcher's uv_async wakes the event loop.
static void OutboxMainQueueNotEmpty(rd_kafka_t*, void* opaque) {
  static_cast<NodeKafka::Callbacks::Dispatcher*>(opaque)->Execute();
}

// On the event loop: serves the whole queue (the callbacks queue their reports on the dispatchers), then hands the
// reports to JavaScript in this turn instead of the next. A disconnect deletes the client under the write lock:
// while it does, the queue is left to it rather than the event loop waiting for librdkafka's shutdown (the relay
// fails the calls still open once the disconnect is done).
void Producer::OutboxServeMainQueue() {
  if (uv_rwlock_tryrdlock(&m_connection_lock) != 0) return;
  if (IsConnected()) m_client->poll(0);
  uv_rwlock_rdunlock(&m_connection_lock);
  m_dr_cb.dispatcher.Flush();
}

// outboxPollOnLoop(): instead of setPollInBackground(true), after connect. The uv_async is closed with the other
// dispatchers once a disconnect destroyed the client, so librdkafka no longer calls back.
NAN_METHOD(Producer::NodeOutboxPollOnLoop) {
  Producer* producer = ObjectWrap::Unwrap<Producer>(info.This());
  scoped_shared_read_lock lock(producer->m_connection_lock);
  if (!producer->IsConnected() || producer->m_is_background_polling) {
    return Nan::ThrowError("outboxPollOnLoop: the producer is not connected, or polls in the background");
  }
  producer->m_outbox_main_queue.Activate();
  rd_kafka_queue_t* queue = rd_kafka_queue_get_main(producer->m_client->c_ptr());
  rd_kafka_queue_cb_event_enable(queue, OutboxMainQueueNotEmpty, &producer->m_outbox_main_queue);
  rd_kafka_queue_destroy(queue);
  // The callback comes only when the queue turns non-empty: what it holds already is served now.
  producer->m_outbox_main_queue.Execute();
  info.GetReturnValue().Set(Nan::True());
}

// outboxExit(code): the process ends now, without waiting for the thread pool's jobs (a blocked connect or
// metadata request) as process.exit() does, and without atexit handlers.
NAN_METHOD(Producer::NodeOutboxExit) {
  std::_Exit(Nan::To<int32_t>(info[0]).FromMaybe(1));
}

Nan::Persistent<v8::Function> Producer::constructor;
`;

/** Per file, [anchor, replacement]: each anchor must occur exactly once in the upstream source. */
const EDITS = {
  'producer.cc': [
    ['Nan::Persistent<v8::Function> Producer::constructor;\n', DECODER],
    [
      '  Nan::SetPrototypeMethod(tpl, "poll", NodePoll);\n',
      '  Nan::SetPrototypeMethod(tpl, "poll", NodePoll);\n' +
      '  Nan::SetPrototypeMethod(tpl, "outboxLeanReports", NodeOutboxLeanReports);\n' +
      '  Nan::SetPrototypeMethod(tpl, "outboxProduceBatch", NodeOutboxProduceBatch);\n' +
      '  Nan::SetPrototypeMethod(tpl, "outboxPollOnLoop", NodeOutboxPollOnLoop);\n' +
      '  Nan::SetMethod(tpl, "outboxExit", NodeOutboxExit);\n',
    ],
    ['#include <vector>\n', `#include <vector>\n${MARK} std::_Exit\n#include <cstdlib>\n`],
    ['  m_dr_cb.dispatcher.Deactivate();\n}\n', `  m_dr_cb.dispatcher.Deactivate();\n  ${MARK} the main queue's dispatcher\n  m_outbox_main_queue.Deactivate();\n}\n`],
  ],
  'producer.h': [
    [
      '  static NAN_METHOD(NodeProduce);\n',
      `  static NAN_METHOD(NodeProduce);\n  ${MARK} lean delivery reports, a batch in one call, the main queue served on the event loop\n  static NAN_METHOD(NodeOutboxLeanReports);\n  static NAN_METHOD(NodeOutboxProduceBatch);\n  static NAN_METHOD(NodeOutboxPollOnLoop);\n  static NAN_METHOD(NodeOutboxExit);\n  OutboxMainQueue m_outbox_main_queue{this};\n`,
    ],
    [
      '  void DeactivateDispatchers();\n',
      `  void DeactivateDispatchers();
  ${MARK} the main queue served on the event loop: its dispatcher's Flush serves the queue
  void OutboxServeMainQueue();
  class OutboxMainQueue : public Callbacks::Dispatcher {
   public:
    explicit OutboxMainQueue(Producer* producer) : producer(producer) {}
    void Flush() { producer->OutboxServeMainQueue(); }
   private:
    Producer* producer;
  };
`,
    ],
  ],
  'callbacks.h': [
    [
      '  DeliveryReport(RdKafka::Message &, bool);\n',
      `  ${MARK} the third argument: a lean report (error and opaque only)\n  DeliveryReport(RdKafka::Message &, bool, bool outbox_lean = false);\n  bool outbox_lean;\n`,
    ],
    ['  void SendMessageBuffer(bool dr_copy_payload);\n', `  void SendMessageBuffer(bool dr_copy_payload);\n  ${MARK} lean delivery reports\n  bool m_outbox_lean = false;\n`],
    ['  int broker_id;\n', `  int broker_id;\n  ${MARK} a fatal error event's code (0 for any other event) and reason\n  int outbox_fatal_err = 0;\n  std::string outbox_fatal_reason;\n`],
  ],
  'callbacks.cc': [
    [
      '    case RdKafka::Event::EVENT_ERROR:\n      message = RdKafka::err2str(event.err());\n    break;\n',
      `    case RdKafka::Event::EVENT_ERROR:
      message = RdKafka::err2str(event.err());
      ${MARK} the C++ layer gave a fatal error event the error that caused it, and its reason
      if (event.fatal()) {
        outbox_fatal_err = static_cast<int>(event.err());
        outbox_fatal_reason = event.str();
      }
    break;
`,
    ],
    [
      '        argv[1] = Nan::Error(_events[i].message.c_str());\n',
      `        argv[1] = Nan::Error(_events[i].message.c_str());
        ${MARK} a fatal error: its code, its name and reason, and the flag (the wrapper keeps all three)
        if (_events[i].outbox_fatal_err != 0) {
          Local<Object> fatal = Nan::New<Object>();
          Nan::Set(fatal, Nan::New("message").ToLocalChecked(), Nan::New(_events[i].message + ": " + _events[i].outbox_fatal_reason).ToLocalChecked());
          Nan::Set(fatal, Nan::New("code").ToLocalChecked(), Nan::New<v8::Number>(_events[i].outbox_fatal_err));
          Nan::Set(fatal, Nan::New("isFatal").ToLocalChecked(), Nan::True());
          argv[1] = fatal;
        }
`,
    ],
    [
      'event_t::event_t(const RdKafka::Event &event) {\n',
      `/* ${FATAL_EVENTS_MARKER} (scripts/patch-kafka-client.mjs of outbox-relay). */
static const char outbox_relay_patch_7[] __attribute__((used)) = "${FATAL_EVENTS_MARKER}";

event_t::event_t(const RdKafka::Event &event) {
`,
    ],
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
      `${MARK} a lean report's opaque as a JavaScript value (undefined if produce() had none): a batch's id as a
// number, else the value of produce()'s handle, which is freed.
static v8::Local<v8::Value> OutboxTakeOpaque(void* opaque) {
  if (opaque == NULL) return Nan::Undefined();
  const uintptr_t tagged = reinterpret_cast<uintptr_t>(opaque);
  if (tagged & 1) return Nan::New<v8::Number>(static_cast<double>(tagged >> 1));
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
if (pending.some((file) => EARLIER_MARKS.some((mark) => texts[file].includes(mark)))) {
  say(`WARNING: the client's sources carry an earlier version of this patch and are left as they are: the relay runs it without the batched produce and reports of this version. Reinstall the client to patch it afresh: rm -rf ${clientDir} && npm ci`);
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
patchLibrdkafka();
// False as well when the addon is absent or fails to load: then it is built.
const loaded = () => {
  try {
    const { Producer } = require(addon);
    return (
      ['outboxLeanReports', 'outboxProduceBatch', 'outboxPollOnLoop'].every((method) => typeof Producer.prototype[method] === 'function') &&
      typeof Producer.outboxExit === 'function' &&
      readFileSync(addon).includes(FATAL_EVENTS_MARKER)
    );
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

/**
 * Change 5: the bundled librdkafka's broker thread does not wake itself at once while the idempotent producer may
 * not send (see the top of this file). Patches deps/librdkafka/src/rdkafka_broker.c and recompiles librdkafka in the
 * build tree the install left; then removes the addon so that the steps below link it again (static linking).
 * A marker string compiled into the library tells a patched build from an unpatched one.
 */
function patchLibrdkafka() {
  const srcFile = join(clientDir, 'deps', 'librdkafka', 'src', 'rdkafka_broker.c');
  const built = [join(clientDir, 'build', 'deps', 'librdkafka.so.1'), join(clientDir, 'build', 'deps', 'librdkafka-static.a')].filter((f) => existsSync(f));
  if (!existsSync(srcFile) || built.length === 0 || !existsSync(join(clientDir, 'deps', 'librdkafka', 'Makefile.config'))) {
    say('librdkafka was not built here (a prebuilt addon): its broker thread keeps the busy wait of change 5');
    return;
  }
  const marker = 'outbox-relay (5): no wake-up while 5 messages of a partition are in flight';
  const text = readFileSync(srcFile, 'utf8');
  if (!text.includes(marker)) {
    const anchor = `                    rkb->rkb_state == RD_KAFKA_BROKER_STATE_UP ? next_wakeup
                                                               : NULL,
`;
    const anchorAt = `static int rd_kafka_toppar_producer_serve(`;
    if (text.split(anchor).length !== 2 || text.split(anchorAt).length !== 2) {
      say(`WARNING: librdkafka's rdkafka_broker.c (client ${version}) does not match change 5; left as it is, so its broker thread busy-waits while a partition has 5 messages in flight. Update scripts/patch-kafka-client.mjs for this version.`);
      return;
    }
    const patched = text
      .replace(anchorAt, () => `/* ${marker} (scripts/patch-kafka-client.mjs of outbox-relay). */
static const char outbox_relay_patch_5[] __attribute__((used)) = "${marker}";

${anchorAt}`)
      .replace(anchor, () => `                    /* ${marker}: the
                     * partition may not send then, and a wake-up now only
                     * spins; the answers arrive on this thread's socket
                     * and wake it. Not while draining for a leader change:
                     * those answers come to another broker thread, which
                     * does not wake this one. */
                    rkb->rkb_state == RD_KAFKA_BROKER_STATE_UP &&
                            !(rd_kafka_is_idempotent(rkb->rkb_rk) &&
                              !rktp->rktp_eos.wait_drain &&
                              rd_atomic32_get(&rktp->rktp_msgs_inflight) >=
                                  RD_KAFKA_IDEMP_MAX_INFLIGHT)
                        ? next_wakeup
                        : NULL,
`);
    writeFileSync(srcFile, patched);
    say(`patched librdkafka's rdkafka_broker.c (client ${version})`);
  }
  if (built.every((file) => readFileSync(file).includes(marker))) return;
  const started = Date.now();
  say('recompiling librdkafka (rdkafka_broker.c)');
  try {
    execFileSync('make', ['-j', '2', '-C', join(clientDir, 'deps', 'librdkafka'), 'libs', 'install-subdirs'], { stdio: 'pipe' });
  } catch (err) {
    process.stderr.write(err.stderr ?? '');
    console.error('patch-kafka-client: error: the patched librdkafka did not compile (make\'s output above). It needs the C toolchain that built it: run `bash scripts/install-prerequisites.sh`, then `npm ci` again.');
    process.exit(1);
  }
  // A statically linked addon holds the old librdkafka: the steps below link it again (node-gyp's make would
  // only copy its intermediate file back).
  for (const file of [addon, join(clientDir, 'build', 'Release', 'obj.target', 'confluent-kafka-javascript.node')]) rmSync(file, { force: true });
  say(`librdkafka rebuilt in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
