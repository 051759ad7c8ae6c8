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

}  // namespace opk::notify

#endif  // OPSKERNEL_PLUGINS_NOTIFICATIONS_RENDER_H
