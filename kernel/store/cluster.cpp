// The default answers of the calls for several kernels on one store
// (store.h): a store that serves one kernel (the embedded SQLite store)
// answers UNSUPPORTED, and the job engine then keeps its runs in memory.
#include "store/store.h"

#include <thread>

namespace opk::store {
namespace {

Status one_kernel_only(const char* what) {
  return Status(OPK_ERR_UNSUPPORTED, std::string("store: ") + what + ": this store serves one kernel");
}

}  // namespace

Status Store::register_node(ClusterNode*) {
  return one_kernel_only("register node");
}

Status Store::heartbeat_node(const std::string&, int64_t, const std::string&, int64_t, int64_t, ClusterNode*) {
  return one_kernel_only("heartbeat");
}

Status Store::expire_nodes(int64_t, std::vector<ClusterNode>*) {
  return one_kernel_only("expire nodes");
}

StatusOr<std::vector<ClusterNode>> Store::cluster_nodes() {
  return one_kernel_only("cluster nodes");
}

Status Store::drain_node(const std::string&, const std::string&) {
  return one_kernel_only("drain node");
}

Status Store::claim_runs(const ClaimRequest&, std::vector<RunRow>*, const std::vector<Completion>*) {
  return one_kernel_only("claim runs");
}

StatusOr<std::vector<RunRow>> Store::orphaned_runs(const std::vector<std::string>&, size_t) {
  return one_kernel_only("orphaned runs");
}

Status Store::request_cancel(int64_t, const std::string&, const std::string&) {
  return one_kernel_only("request cancel");
}

StatusOr<std::map<int64_t, std::pair<std::string, std::string>>> Store::cancel_requests(const std::string&, int64_t) {
  return one_kernel_only("cancel requests");
}

Status Store::repair_open_runs(int64_t, int64_t* repaired) {
  *repaired = 0;  // its list of open runs moves inside the creating transaction: none lost
  return Status::ok();
}

StatusOr<int64_t> Store::next_due(const std::vector<std::string>&, int64_t) {
  return one_kernel_only("next due");
}

bool Store::wait_hint(int64_t timeout_ms, Hint* hint) {
  *hint = Hint();
  std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
  return false;
}

}  // namespace opk::store
