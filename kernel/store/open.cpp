// Opening the store a configuration names (open.h).
#include "store/open.h"

namespace opk::store {

Status open(const config::Config& config, std::unique_ptr<Store>* out, const OpenOptions& options) {
  OpenCheck check = OpenCheck::none;
  if (options.check && config.store_check == "full")
    check = OpenCheck::full;
  else if (options.check && config.store_check == "quick")
    check = OpenCheck::quick;
  return open_sqlite(config.store_file(), config.store_sync_full, out, {}, check);
}

}  // namespace opk::store
