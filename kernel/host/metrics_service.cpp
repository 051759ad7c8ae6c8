// The metrics service and its C table: the plugins' collectors by plugin and
// name, each collection guarded (its own buffer, the status and the text
// checked, exceptions caught) and left out with a log line when it fails.
#include "host/metrics_service.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <vector>

#include <spdlog/spdlog.h>

#include "host/host.h"
#include "host/identity_service.h"
#include "host/plugin_entries.h"
#include "host/served.h"
#include "log/logging.h"

namespace opk::host {
namespace {

ServedBy<MetricsService> g_metrics_served;

MetricsService* served(const opk_host* host, std::string* plugin_id) {
  auto* ph = PluginHost::from(host);
  if (!ph) return nullptr;
  MetricsService* self = g_metrics_served.find(ph);
  if (self && plugin_id) *plugin_id = ph->plugin_id();
  return self;
}

bool valid_name(const std::string& name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// The kernel-private part of a writer: the buffer of one collection.
struct Buffer {
  std::string text;
};

void cb_append(const opk_metrics_writer* self, const char* text) {
  if (self && self->host_data && text) reinterpret_cast<Buffer*>(self->host_data)->text += text;
}

bool name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (!first && c >= '0' && c <= '9');
}

// The metric name at the start of `s`.
std::string name_at(const std::string& s) {
  size_t n = 0;
  while (n < s.size() && name_char(s[n], n == 0)) ++n;
  return s.substr(0, n);
}

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    i += len;
  }
  return true;
}

}  // namespace

std::string check_exposition(const std::string& text) {
  if (!valid_utf8(text)) return "not UTF-8 text";
  if (!text.empty() && text.back() != '\n') return "the last line does not end in a newline";
  size_t line_no = 0;
  for (size_t at = 0; at < text.size();) {
    const size_t end = text.find('\n', at);
    const std::string line = text.substr(at, end - at);
    at = end + 1;
    ++line_no;
    const std::string where = "line " + std::to_string(line_no) + ": ";
    for (char c : line)
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t') return where + "holds a control character";
    if (line.empty()) continue;
    if (line[0] == '#') {
      // "# HELP name text" and "# TYPE name type" name a metric; other
      // comments are free text.
      if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
        const std::string rest = line.substr(7);
        const std::string name = name_at(rest);
        if (name.rfind("opskernel_", 0) != 0) return where + "names '" + name + "', not a metric starting opskernel_";
        if (line.rfind("# TYPE ", 0) == 0) {
          static const char* const kTypes[] = {"counter", "gauge", "histogram", "summary", "untyped"};
          const std::string type = rest.size() > name.size() + 1 ? rest.substr(name.size() + 1) : "";
          if (std::none_of(std::begin(kTypes), std::end(kTypes), [&](const char* t) { return type == t; }))
            return where + "type '" + type + "' is not counter, gauge, histogram, summary or untyped";
        }
      }
      continue;
    }
    const std::string name = name_at(line);
    if (name.rfind("opskernel_", 0) != 0) return where + "the metric name does not start with opskernel_";
    size_t p = name.size();
    if (p < line.size() && line[p] == '{') {
      // Labels: name="value" pairs, values with \\, \" and \n escapes.
      ++p;
      while (p < line.size() && line[p] != '}') {
        const std::string label = name_at(line.substr(p));
        if (label.empty() || label.find(':') != std::string::npos) return where + "a bad label name";
        p += label.size();
        if (p + 1 >= line.size() || line[p] != '=' || line[p + 1] != '"') return where + "a label without =\"value\"";
        p += 2;
        while (p < line.size() && line[p] != '"') p += line[p] == '\\' ? 2 : 1;
        if (p >= line.size()) return where + "an unterminated label value";
        ++p;
        if (p < line.size() && line[p] == ',') ++p;
      }
      if (p >= line.size()) return where + "labels without a closing brace";
      ++p;
    }
    if (p >= line.size() || line[p] != ' ') return where + "no value after the metric";
    const std::string rest = line.substr(p + 1);
    const std::string value = rest.substr(0, rest.find(' '));
    if (value != "NaN" && value != "+Inf" && value != "-Inf") {
      char* stop = nullptr;
      std::strtod(value.c_str(), &stop);
      if (value.empty() || stop != value.c_str() + value.size()) return where + "value '" + value + "' is not a number";
    }
  }
  return {};
}

MetricsService::MetricsService() {
  ext_.struct_size = sizeof ext_;
  ext_.add_collector = &cb_add;
  ext_.remove_collector = &cb_remove;
  ext_.collect = &cb_collect;
}

MetricsService::~MetricsService() {
  g_metrics_served.forget(this);
}

void MetricsService::serve(const PluginHost* host) {
  g_metrics_served.serve(host, this);
}

Status MetricsService::add(const std::string& plugin_id, const std::string& name, opk_metrics_collect_fn collect,
                           void* user_data) {
  if (!valid_name(name)) return Status::invalid("name: '" + name + "' is not 1..64 of [a-z0-9_-]");
  if (collect == nullptr) return Status::invalid("collect: is NULL");
  std::unique_lock lock(mu_);
  auto& slot = entries_[{plugin_id, name}];
  if (slot) return Status::conflict("name: plugin '" + plugin_id + "' has a collector '" + name + "' already");
  slot = std::make_shared<Entry>();
  slot->plugin = plugin_id;
  slot->name = name;
  slot->order = next_++;
  slot->collect = collect;
  slot->user_data = user_data;
  return Status::ok();
}

Status MetricsService::remove(const std::string& plugin_id, const std::string& name) {
  std::shared_ptr<Entry> e;
  {
    std::unique_lock lock(mu_);
    auto it = entries_.find({plugin_id, name});
    if (it == entries_.end()) return Status::not_found("plugin '" + plugin_id + "' has no collector '" + name + "'");
    e = it->second;
    entries_.erase(it);
  }
  std::unique_lock wait(e->mu);
  e->gone = true;
  return Status::ok();
}

void MetricsService::remove_plugin(const std::string& plugin_id) {
  // Collections already inside a collector hold its entry: wait for them.
  remove_plugin_entries(mu_, entries_, plugin_id);
}

size_t MetricsService::size() const {
  std::shared_lock lock(mu_);
  return entries_.size();
}

std::string MetricsService::collect() {
  std::vector<std::shared_ptr<Entry>> all;
  {
    std::shared_lock lock(mu_);
    for (const auto& [key, e] : entries_) all.push_back(e);
  }
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a->order < b->order; });
  std::string out;
  for (const auto& e : all) {
    std::shared_lock hold(e->mu);
    if (e->gone) continue;
    Buffer buffer;
    opk_metrics_writer w{};
    w.struct_size = sizeof w;
    w.host_data = reinterpret_cast<opk_host_data*>(&buffer);
    w.append = &cb_append;
    clear_error();
    opk_status st = OPK_ERR_INTERNAL;
    bool threw = false;
    try {
      st = e->collect(e->user_data, &w);
    } catch (...) {  // a last guard only: exceptions must not cross the ABI
      threw = true;
    }
    const std::string detail = take_error();
    std::string why;
    if (threw)
      why = "threw an exception across the ABI";
    else if (st != OPK_OK)
      why = "failed with status " + std::to_string(st) + (detail.empty() ? "" : ": " + detail);
    else
      why = check_exposition(buffer.text);
    if (!why.empty()) {
      log::kernel()->warn("metrics collector {} of plugin {} left out of this collection: {}", e->name, e->plugin, why);
      continue;
    }
    out += buffer.text;
  }
  return out;
}

opk_status MetricsService::cb_add(const opk_host* host, const char* name, opk_metrics_collect_fn collect,
                                  void* user_data) {
  std::string plugin;
  MetricsService* self = served(host, &plugin);
  if (!self) return OPK_ERR_UNAVAILABLE;
  const Status s = self->add(plugin, name ? name : "", collect, user_data);
  if (!s) report_host_error(s.message());
  return s.code();
}

opk_status MetricsService::cb_remove(const opk_host* host, const char* name) {
  std::string plugin;
  MetricsService* self = served(host, &plugin);
  if (!self) return OPK_ERR_UNAVAILABLE;
  const Status s = self->remove(plugin, name ? name : "");
  if (!s) report_host_error(s.message());
  return s.code();
}

opk_status MetricsService::cb_collect(const opk_host* host, char** text) {
  if (!text) return OPK_ERR_INVALID_ARGUMENT;
  MetricsService* self = served(host, nullptr);
  if (!self) return OPK_ERR_UNAVAILABLE;
  *text = plugin_string(self->collect());
  return *text ? OPK_OK : OPK_ERR_NO_MEMORY;
}

}  // namespace opk::host
