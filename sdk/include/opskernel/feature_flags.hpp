// feature_flags.hpp -- opk::FeatureFlags, the C++ view of
// opskernel.feature-flags/1 (feature_flags.h).
//
// Header-only, on opk::Json. A plugin that reads global flags declares the
// requirement in its manifest (optional: it runs on defaults without the
// feature-flags plugin):
//
//   .requires_extension(OPK_EXT_FEATURE_FLAGS, true)
//
// declares its flags from start and checks them anywhere:
//
//   opk::FeatureFlags flags(host());
//   Status s = flags.declare({{"new-checkout", false, "Serve the new checkout"}});
//   if (flags.enabled("new-checkout")) ...
//
// A check reads the feature-flags plugin's in-memory snapshot: no store
// read, no allocation for a boolean or a number.
// Thread-safety: as the extension, every call may be made from any thread.
#ifndef OPSKERNEL_FEATURE_FLAGS_HPP
#define OPSKERNEL_FEATURE_FLAGS_HPP

#include <opskernel/feature_flags.h>
#include <opskernel/opk.hpp>

#include <string>
#include <vector>

namespace opk {

// One flag a plugin declares (feature_flags.h, declare).
struct FlagDeclaration {
  std::string id;
  Json default_value;  // a boolean, a string or a number: the flag's type
  std::string description;
  std::string owner;  // empty: the plugin's id
};

// The global feature flags as a plugin reads them.
class FeatureFlags {
 public:
  explicit FeatureFlags(const Host& host)
      : host_(host), f_(host.extension<opk_feature_flags_v1>(OPK_EXT_FEATURE_FLAGS)) {}

  // True when the feature-flags plugin runs (and the requirement is declared).
  bool available() const { return f_ != nullptr; }

  // Declares this plugin's flags (all or none; see feature_flags.h).
  Status declare(const std::vector<FlagDeclaration>& flags) const {
    if (!available()) return {OPK_ERR_UNAVAILABLE, "the feature-flags plugin is not running"};
    Json doc = Json::array();
    for (const auto& f : flags) {
      Json one = {{"id", f.id}, {"default", f.default_value}, {"description", f.description}};
      if (!f.owner.empty()) one["owner"] = f.owner;
      doc.push_back(std::move(one));
    }
    const std::string text = doc.dump();
    char* out = nullptr;
    const opk_status st = f_->declare(host_.raw(), text.c_str(), &out);
    Json answer = out ? Json::parse(out, nullptr, false) : Json();
    if (out) f_->free(out);
    if (st == OPK_OK) return Status::ok();
    return {st, answer.is_object() && answer.contains("error") && answer["error"].is_string()
                    ? answer["error"].get<std::string>()
                    : std::string("feature flags not declared")};
  }

  // Boolean flag `id` now, or `fallback` (unknown, another type, no plugin).
  bool enabled(const char* id, bool fallback = false) const {
    return f_ ? f_->enabled(host_.raw(), id, fallback ? 1 : 0) != 0 : fallback;
  }
  // Number flag `id` now, or `fallback`.
  double number(const char* id, double fallback) const { return f_ ? f_->number(host_.raw(), id, fallback) : fallback; }
  // String flag `id` now, or `fallback`.
  std::string string(const char* id, const std::string& fallback) const {
    if (!f_) return fallback;
    char buf[256];
    size_t length = 0;
    if (f_->string(host_.raw(), id, buf, sizeof buf, &length) != OPK_OK) return fallback;
    if (length < sizeof buf) return std::string(buf, length);
    std::string big(length + 1, '\0');
    if (f_->string(host_.raw(), id, big.data(), big.size(), &length) != OPK_OK) return fallback;
    big.resize(std::min(length, big.size() - 1));
    return big;
  }

 private:
  const Host& host_;
  const opk_feature_flags_v1* f_;
};

}  // namespace opk

#endif  // OPSKERNEL_FEATURE_FLAGS_HPP
