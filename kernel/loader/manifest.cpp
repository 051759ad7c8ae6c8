#include "loader/manifest.h"

#include <Poco/JSON/Parser.h>

#include <cstring>
#include <regex>
#include <set>
#include <sstream>

#include "config/config.h"
#include "jobs/params.h"

namespace opk::loader {
namespace {

// Size of a struct as ABI 1.0 defined it: fields up to and including `last`.
#define OPK_V1_0_SIZE(type, last) (offsetof(type, last) + sizeof(((type*)0)->last))

constexpr size_t kManifest10 = OPK_V1_0_SIZE(opk_manifest, requirement_count);
constexpr size_t kJobType10 = OPK_V1_0_SIZE(opk_job_type, cancel);
constexpr size_t kAlertSource10 = OPK_V1_0_SIZE(opk_alert_source, evaluate);
constexpr size_t kFeature10 = OPK_V1_0_SIZE(opk_admin_feature, translation_count);
constexpr size_t kChannel10 = OPK_V1_0_SIZE(opk_notification_channel, send);

std::string s(const char* p) {
  return p ? std::string(p) : std::string();
}

// Copies min(struct_size, sizeof(T)) of *p into a zeroed T.
template <typename T>
Status copy_struct(const T* p, size_t min_size, const std::string& what, T* out) {
  if (p == nullptr) return Status::invalid(what + ": is NULL");
  if (p->struct_size < min_size)
    return Status::invalid(what + ": struct_size " + std::to_string(p->struct_size) +
                           " is smaller than the ABI 1.0 size " + std::to_string(min_size));
  std::memset(static_cast<void*>(out), 0, sizeof(T));
  std::memcpy(static_cast<void*>(out), p, std::min<size_t>(p->struct_size, sizeof(T)));
  return Status::ok();
}

Status check_id(const std::string& what, const char* id) {
  if (id == nullptr || !config::valid_id(id))
    return Status::invalid(what + ": id '" + s(id) + "' is invalid (want [a-z0-9][a-z0-9._-]*, at most 64 bytes)");
  return Status::ok();
}

Status check_title(const std::string& what, const char* title) {
  if (title == nullptr || *title == '\0') return Status::invalid(what + ": title is missing");
  return Status::ok();
}

Status read_translations(const std::string& what, const opk_translation* t, uint32_t n, std::vector<Translation>* out) {
  if (n > 0 && t == nullptr)
    return Status::invalid(what + ": translation_count is " + std::to_string(n) + " but translations is NULL");
  static const std::regex lang("^[a-zA-Z]{2,8}(-[a-zA-Z0-9]{1,8})*$");
  for (uint32_t i = 0; i < n; ++i) {
    if (t[i].lang == nullptr || !std::regex_match(t[i].lang, lang))
      return Status::invalid(what + ": translation " + std::to_string(i) + " has an invalid language tag '" +
                             s(t[i].lang) + "'");
    out->push_back({t[i].lang, s(t[i].title), s(t[i].description)});
  }
  return Status::ok();
}

Status check_json_object(const std::string& what, const std::string& text) {
  try {
    Poco::JSON::Parser parser;
    auto v = parser.parse(text);
    if (v.type() != typeid(Poco::JSON::Object::Ptr)) return Status::invalid(what + ": is not a JSON object");
  } catch (const Poco::Exception& e) {
    return Status::invalid(what + ": is not valid JSON (" + e.displayText() + ")");
  }
  return Status::ok();
}

Status read_job_type(const opk_job_type* p, size_t index, JobType* j) {
  std::string what = "job type #" + std::to_string(index);
  Status st = copy_struct(p, kJobType10, what, &j->c);
  if (!st) return st;
  const opk_job_type& c = j->c;
  if (!(st = check_id(what, c.id))) return st;
  what = "job type '" + s(c.id) + "'";
  if (!(st = check_title(what, c.title))) return st;
  if (c.run == nullptr) return Status::invalid(what + ": run is NULL");
  const bool cap_cancel = c.capabilities & OPK_JOB_CAP_CANCEL;
  if (cap_cancel && c.cancel == nullptr)
    return Status::invalid(what + ": declares the cancel capability but has no cancel hook");
  if (!cap_cancel && c.cancel != nullptr)
    return Status::invalid(what + ": has a cancel hook but does not declare the cancel capability");
  const uint64_t known = OPK_JOB_CAP_MANUAL_RUN | OPK_JOB_CAP_CANCEL | OPK_JOB_CAP_DRY_RUN | OPK_JOB_CAP_REQUEUE;
  if (c.capabilities & ~known) {
    std::ostringstream bits;
    bits << std::hex << (c.capabilities & ~known);
    return Status::invalid(what + ": unknown capability bits 0x" + bits.str());
  }
  if (c.params_schema_json && !(st = check_json_object(what + ": params_schema_json", c.params_schema_json))) return st;
  if (c.params_schema_json && !(st = jobs::check_schema(c.params_schema_json)))
    return Status::invalid(what + ": params_schema_json: " + st.message());
  if (c.default_schedule && !plausible_schedule(c.default_schedule))
    return Status::invalid(what + ": default_schedule '" + s(c.default_schedule) +
                           "' is neither a cron macro nor five fields");
  if (c.worker_pool && !config::valid_id(c.worker_pool))
    return Status::invalid(what + ": worker_pool '" + s(c.worker_pool) + "' is not a valid name");
  if (c.timeout_ms != 0 && c.target_duration_ms > c.timeout_ms)
    return Status::invalid(what + ": target_duration_ms exceeds timeout_ms");
  if (c.action_count > 0 && c.actions == nullptr)
    return Status::invalid(what + ": action_count is " + std::to_string(c.action_count) + " but actions is NULL");
  std::set<std::string> steps;
  for (uint32_t i = 0; i < c.action_count; ++i) {
    if (!(st = check_id(what + ": action " + std::to_string(i), c.actions[i].id))) return st;
    if (!steps.insert(c.actions[i].id).second)
      return Status::invalid(what + ": action '" + s(c.actions[i].id) + "' is declared twice");
    j->actions.push_back({c.actions[i].id, s(c.actions[i].title)});
  }
  if (!(st = read_translations(what, c.translations, c.translation_count, &j->translations))) return st;
  j->self = p;
  j->id = c.id;
  j->title = c.title;
  j->description = s(c.description);
  j->owner = s(c.owner);
  j->capabilities = c.capabilities;
  j->params_schema_json = s(c.params_schema_json);
  j->default_schedule = s(c.default_schedule);
  j->target_duration_ms = c.target_duration_ms;
  j->timeout_ms = c.timeout_ms;
  j->priority = c.priority;
  if (c.worker_pool) j->worker_pool = c.worker_pool;
  return Status::ok();
}

Status read_alert_source(const opk_alert_source* p, size_t index, AlertSource* a) {
  std::string what = "alert source #" + std::to_string(index);
  Status st = copy_struct(p, kAlertSource10, what, &a->c);
  if (!st) return st;
  const auto& c = a->c;
  if (!(st = check_id(what, c.id))) return st;
  what = "alert source '" + s(c.id) + "'";
  if (!(st = check_title(what, c.title))) return st;
  if (c.evaluate == nullptr) return Status::invalid(what + ": evaluate is NULL");
  if (c.default_schedule && !plausible_schedule(c.default_schedule))
    return Status::invalid(what + ": default_schedule '" + s(c.default_schedule) + "' is not a schedule");
  if (!(st = read_translations(what, c.translations, c.translation_count, &a->translations))) return st;
  a->self = p;
  a->id = c.id;
  a->title = c.title;
  a->description = s(c.description);
  a->area = s(c.area);
  a->flags = c.flags;
  a->default_schedule = s(c.default_schedule);
  if (c.timeout_ms < 0) return Status::invalid(what + ": timeout_ms " + std::to_string(c.timeout_ms) + " is negative");
  a->clean_sweeps = c.clean_sweeps == 0 ? 1 : c.clean_sweeps;
  a->timeout_ms = c.timeout_ms;
  return Status::ok();
}

}  // namespace

bool valid_extension_id(const std::string& id) {
  static const std::regex re("^[a-z0-9][a-z0-9._-]{0,63}/[0-9]{1,4}$");
  return std::regex_match(id, re);
}

bool plausible_schedule(const std::string& sched) {
  static const std::set<std::string> macros = {"@yearly", "@annually", "@monthly", "@weekly",
                                               "@daily",  "@midnight", "@hourly"};
  if (macros.count(sched)) return true;
  static const std::regex five("^\\s*([0-9A-Za-z*/,?-]+\\s+){4}[0-9A-Za-z*/,?-]+\\s*$");
  return std::regex_match(sched, five);
}

Status read_manifest(const opk_manifest* mp, bool has_get_extension, Manifest* out) {
  opk_manifest m{};
  Status st = copy_struct(mp, kManifest10, "manifest", &m);
  if (!st) return st;
  if (!(st = check_id("manifest", m.id))) return st;
  if (m.name == nullptr || *m.name == '\0') return Status::invalid("manifest: name is missing");
  static const std::regex semver("^[0-9]+\\.[0-9]+\\.[0-9]+([-+][0-9A-Za-z.+-]*)?$");
  if (m.version == nullptr || !std::regex_match(m.version, semver))
    return Status::invalid("manifest: version '" + s(m.version) + "' is not MAJOR.MINOR.PATCH");
  if (m.vendor == nullptr || *m.vendor == '\0') return Status::invalid("manifest: vendor is missing");

  Manifest r;
  r.id = m.id;
  r.name = m.name;
  r.version = m.version;
  r.vendor = m.vendor;
  r.description = s(m.description);

  auto count_ok = [](const void* arr, uint32_t n, const char* what) {
    return (n > 0 && arr == nullptr) ? Status::invalid(std::string("manifest: ") + what + " count is " +
                                                       std::to_string(n) + " but the array is NULL")
                                     : Status::ok();
  };
  if (!(st = count_ok(m.job_types, m.job_type_count, "job type"))) return st;
  if (!(st = count_ok(m.alert_sources, m.alert_source_count, "alert source"))) return st;
  if (!(st = count_ok(m.admin_features, m.admin_feature_count, "admin feature"))) return st;
  if (!(st = count_ok(m.notification_channels, m.notification_channel_count, "notification channel"))) return st;
  if (!(st = count_ok(m.provides, m.provides_count, "provides"))) return st;
  if (!(st = count_ok(m.requirements, m.requirement_count, "requires"))) return st;

  std::set<std::string> ids;
  auto unique = [&](const std::string& kind, const std::string& id) {
    return ids.insert(kind + ":" + id).second ? Status::ok()
                                              : Status::invalid(kind + " '" + id + "' is declared twice");
  };
  for (uint32_t i = 0; i < m.job_type_count; ++i) {
    JobType j;
    if (!(st = read_job_type(m.job_types[i], i, &j))) return st;
    if (!(st = unique("job type", j.id))) return st;
    r.job_types.push_back(std::move(j));
  }
  for (uint32_t i = 0; i < m.alert_source_count; ++i) {
    AlertSource a;
    if (!(st = read_alert_source(m.alert_sources[i], i, &a))) return st;
    if (!(st = unique("alert source", a.id))) return st;
    r.alert_sources.push_back(std::move(a));
  }
  for (uint32_t i = 0; i < m.admin_feature_count; ++i) {
    opk_admin_feature c{};
    std::string what = "admin feature #" + std::to_string(i);
    if (!(st = copy_struct(m.admin_features[i], kFeature10, what, &c))) return st;
    if (!(st = check_id(what, c.id))) return st;
    what = "admin feature '" + s(c.id) + "'";
    if (!(st = check_title(what, c.title))) return st;
    AdminFeature f{c.id, c.title, s(c.description), {}, {}};
    if (!(st = read_translations(what, c.translations, c.translation_count, &f.translations))) return st;
    if (c.permission_count > 0 && c.permissions == nullptr)
      return Status::invalid(what + ": permission_count is " + std::to_string(c.permission_count) +
                             " but permissions is NULL");
    if (c.permission_count > 256) return Status::invalid(what + ": more than 256 permissions");
    for (uint32_t k = 0; k < c.permission_count; ++k) {
      const std::string name = s(c.permissions[k].name);
      if (!config::valid_permission(name))
        return Status::invalid(what + ": permission '" + name +
                               "' is not <area>.<verb> ([a-z][a-z0-9_-]*.[a-z][a-z0-9_.-]*, at most 64 bytes)");
      if (!(st = unique("permission", name))) return Status::invalid(what + ": " + st.message());
      f.permissions.emplace_back(name, s(c.permissions[k].description));
    }
    if (!(st = unique("admin feature", f.id))) return st;
    r.admin_features.push_back(std::move(f));
  }
  for (uint32_t i = 0; i < m.notification_channel_count; ++i) {
    Channel ch;
    std::string what = "notification channel #" + std::to_string(i);
    if (!(st = copy_struct(m.notification_channels[i], kChannel10, what, &ch.c))) return st;
    if (!(st = check_id(what, ch.c.id))) return st;
    what = "notification channel '" + s(ch.c.id) + "'";
    if (!(st = check_title(what, ch.c.title))) return st;
    // (1.4) deliver may stand in for send; one of them is needed.
    if (ch.c.send == nullptr && ch.c.deliver == nullptr)
      return Status::invalid(what +
                             ": has neither send nor deliver (a channel needs one of them; deliver since ABI 1.4)");
    ch.self = m.notification_channels[i];
    ch.id = ch.c.id;
    ch.title = ch.c.title;
    ch.description = s(ch.c.description);
    if (!(st = unique("notification channel", ch.id))) return st;
    r.channels.push_back(std::move(ch));
  }
  for (uint32_t i = 0; i < m.provides_count; ++i) {
    std::string id = s(m.provides[i]);
    if (!valid_extension_id(id))
      return Status::invalid("manifest: provided extension '" + id + "' is not NAME/REVISION");
    if (id.rfind("opk.", 0) == 0)
      return Status::invalid("manifest: provided extension '" + id +
                             "' uses the prefix 'opk.', reserved for the kernel");
    if (!(st = unique("provided extension", id))) return st;
    r.provides.push_back(id);
  }
  if (!r.provides.empty() && !has_get_extension)
    return Status::invalid("manifest: provides extensions but the entry has no get_extension");
  for (uint32_t i = 0; i < m.requirement_count; ++i) {
    std::string id = s(m.requirements[i].extension_id);
    if (!valid_extension_id(id))
      return Status::invalid("manifest: required extension '" + id + "' is not NAME/REVISION");
    for (const auto& seen : r.requirements)
      if (seen.extension_id == id) return Status::invalid("manifest: required extension '" + id + "' is listed twice");
    r.requirements.push_back({id, m.requirements[i].optional != 0});
  }
  *out = std::move(r);
  return Status::ok();
}

}  // namespace opk::loader
