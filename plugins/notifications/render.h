// render.h -- a notification's text from its rule's templates (Liquid) and
// the event, or from the default templates of the event kind in the rule's
// locale (en, sv; other locales fall back to en). A template that fails to
// render is recorded and the default used instead: a message always results.
// Thread-safety: free functions, safe from any thread.
#ifndef OPSKERNEL_PLUGINS_NOTIFICATIONS_RENDER_H
#define OPSKERNEL_PLUGINS_NOTIFICATIONS_RENDER_H

#include <string>
#include <vector>

#include "model.h"

namespace opk::notify {

// Where a template is wrong.
struct TemplateError {
  std::string field;  // "template.body"
  int line = 0;       // 1-based; 0 when not known
  int column = 0;
  std::string message;  // without the location
  // "template.body: line 3, column 14: unknown tag 'endfo'".
  std::string text() const;
};

// Parses each non-empty part of `t`; every part's error, in the order
// subject, body, html_body (empty: all parse).
std::vector<TemplateError> check_templates(const Templates& t);

// What a channel is given.
struct Message {
  std::string subject;
  std::string body;
  std::string html_body;     // may be empty
  std::string content_type;  // "text/plain" or "application/json"
  // A render error of the rule's own template, for which the default was
  // used ("template.body: line 1, column 4: ..."); empty when none.
  std::string render_error;
};

// The data a template sees: the event's document, plus "event" {seq, kind,
// time_ms, time (ISO 8601 UTC), scope, subject} and "rule" {id, name,
// group_id}.
Json template_data(const Event& event, const Rule& rule);

// The message for `event` by `rule`: the rule's templates where set, the
// defaults of the event kind in the rule's locale otherwise. A webhook's
// default body is the event itself as JSON ({"type", "timestamp", "data"}).
Message render(const Event& event, const Rule& rule);

// An event made ready for the messages of several rules: its document
// written once and moved (not copied) into the templates' data.
struct Rendering {
  Event event;               // its payload moved into `data`
  std::string payload_json;  // the document as nlohmann writes it (invalid UTF-8 replaced)
  bool payload_null = false;
  Json data;  // template_data(event, rule) without "rule"
};

// Takes `event` apart for rendering (its payload written and moved).
Rendering rendering_of(Event event);

// What render(event, rule) gives, from a Rendering of the event (its
// data's "rule" is set to `rule`'s). With `envelope` not null, a body that
// would be the webhook's default envelope is left empty and *envelope set
// instead (the outbox stores "body_of": "event" for it).
Message render(Rendering& r, const Rule& rule, bool* envelope = nullptr);

// The event as the channels get it (opk_notification.event_json): the
// object {kind, payload, scope, seq, subject, time_ms} byte for byte as
// nlohmann writes it (keys in order, invalid UTF-8 replaced).
std::string event_json_of(const Rendering& r);

// A delivery's message as the outbox stores it: the object {body,
// content_type, event_json, html_body, options, subject} byte for byte as
// nlohmann writes it, without building the document. When `envelope` (set
// by render), the body is the webhook's default envelope and is not stored:
// "body_of": "event" stands for it, and load_message makes it again from
// event_json, so the event's document is stored once.
std::string stored_message(const Message& m, bool envelope, const std::string& event_json,
                           const std::string& options_json);

// Parses a stored message; a body left out ("body_of": "event") is made
// again from its event_json, byte for byte as render made it. An
// unreadable text gives {}.
Json load_message(const std::string& text);

}  // namespace opk::notify

#endif  // OPSKERNEL_PLUGINS_NOTIFICATIONS_RENDER_H
