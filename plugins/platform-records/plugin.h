// plugin.h -- platform-records: the platform's business records
// (subscriptions, usage, billing contacts, invoices, budgets, licenses,
// regions, probes, billing lines, commissions) in the kernel's store,
// imported and exported over the admin API and by the job types
// records-import and records-export, and offered to other plugins as
// opskernel.records/1 (records.h).
//
// Settings ([plugin.platform-records]):
//   probe_retention  how long probes are kept, a duration (default 30d)
// Thread-safety: routes, runs and extension calls may come on any thread at
// once; the plugin's state is immutable after init.
#ifndef OPSKERNEL_PLUGINS_PLATFORM_RECORDS_PLUGIN_H
#define OPSKERNEL_PLUGINS_PLATFORM_RECORDS_PLUGIN_H

#include <opskernel/records.h>
#include <opskernel/opk.hpp>

#include <memory>
#include <string_view>

#include "service.h"

namespace opk::records {

class RecordsPlugin : public Plugin {
 public:
  explicit RecordsPlugin(Host host);
  ~RecordsPlugin() override;

  // Reads the settings and migrates the tables; then serves opskernel.records/1.
  Status init() override;
  // Adds the admin API's routes.
  Status start() override;
  const void* extension(std::string_view id) override;

  const Service& service() const { return *service_; }
  int64_t probe_retention_ms() const { return probe_retention_ms_; }

 private:
  Status add_routes();  // routes.cpp

  std::unique_ptr<Service> service_;
  int64_t probe_retention_ms_ = 30LL * 86'400'000;
};

// The opskernel.records/1 table, served for `plugin` (nullptr: no longer served;
// calls then answer UNAVAILABLE). extension.cpp.
const opk_records_v1* serve_extension(RecordsPlugin* plugin);

// The caller of a request.
Caller caller_of(const Request& rq);

}  // namespace opk::records

#endif  // OPSKERNEL_PLUGINS_PLATFORM_RECORDS_PLUGIN_H
