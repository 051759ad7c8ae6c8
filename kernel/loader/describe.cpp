#include "loader/describe.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <sstream>

namespace opk::loader {
namespace {
using Poco::JSON::Array;
using Poco::JSON::Object;

Array::Ptr translations(const std::vector<Translation>& ts) {
  Array::Ptr a = new Array;
  for (const auto& t : ts) {
    Object::Ptr o = new Object;
    o->set("lang", t.lang);
    if (!t.title.empty()) o->set("title", t.title);
    if (!t.description.empty()) o->set("description", t.description);
    a->add(o);
  }
  return a;
}
}  // namespace

std::string to_json(const Manifest& m, int indent) {
  Object::Ptr root = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  root->set("id", m.id);
  root->set("name", m.name);
  root->set("version", m.version);
  root->set("vendor", m.vendor);
  root->set("description", m.description);
  root->set("abi", std::to_string(m.abi_major) + "." + std::to_string(m.abi_minor));
  Array::Ptr jobs = new Array;
  for (const auto& j : m.job_types) {
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("id", j.id);
    o->set("title", j.title);
    o->set("description", j.description);
    o->set("owner", j.owner);
    o->set("manual_run", j.manual_run());
    o->set("cancel", j.cancellable());
    o->set("dry_run", j.dry_run());
    o->set("requeue_after_crash", (j.capabilities & OPK_JOB_CAP_REQUEUE) != 0);
    o->set("default_schedule", j.default_schedule);
    o->set("target_duration_ms", j.target_duration_ms);
    o->set("timeout_ms", j.timeout_ms);
    o->set("priority", j.priority);
    o->set("worker_pool", j.worker_pool);
    o->set("params_schema", j.params_schema_json.empty() ? std::string("{}") : j.params_schema_json);
    Array::Ptr actions = new Array;
    for (const auto& a : j.actions) {
      Object::Ptr ao = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
      ao->set("id", a.id);
      ao->set("title", a.title);
      actions->add(ao);
    }
    o->set("actions", actions);
    o->set("translations", translations(j.translations));
    jobs->add(o);
  }
  root->set("job_types", jobs);
  Array::Ptr alerts = new Array;
  for (const auto& a : m.alert_sources) {
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("id", a.id);
    o->set("title", a.title);
    o->set("description", a.description);
    o->set("area", a.area);
    o->set("platform_only", (a.flags & OPK_ALERT_PLATFORM_ONLY) != 0);
    o->set("default_schedule", a.default_schedule);
    o->set("full_sweep", a.full_sweep());
    o->set("clean_sweeps", a.clean_sweeps);
    o->set("timeout_ms", a.timeout_ms);
    o->set("translations", translations(a.translations));
    alerts->add(o);
  }
  root->set("alert_sources", alerts);
  Array::Ptr features = new Array;
  for (const auto& f : m.admin_features) {
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("id", f.id);
    o->set("title", f.title);
    o->set("description", f.description);
    o->set("translations", translations(f.translations));
    Array::Ptr permissions = new Array;
    for (const auto& [name, description] : f.permissions) {
      Object::Ptr p = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
      p->set("name", name);
      p->set("description", description);
      permissions->add(p);
    }
    o->set("permissions", permissions);
    features->add(o);
  }
  root->set("admin_features", features);
  Array::Ptr channels = new Array;
  for (const auto& c : m.channels) {
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("id", c.id);
    o->set("title", c.title);
    o->set("description", c.description);
    channels->add(o);
  }
  root->set("notification_channels", channels);
  Array::Ptr provides = new Array;
  for (const auto& p : m.provides) provides->add(p);
  root->set("provides", provides);
  Array::Ptr required = new Array;
  for (const auto& r : m.requirements) {
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("extension", r.extension_id);
    o->set("optional", r.optional);
    required->add(o);
  }
  root->set("requires", required);
  std::ostringstream out;
  root->stringify(out, static_cast<unsigned>(indent));
  return out.str();
}

}  // namespace opk::loader
