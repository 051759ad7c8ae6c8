// seen.h -- what each console user has seen, kept on the server (the
// console plugin's own tables through opk.store/1), so the Attention page
// and the unread-log markers are the same in every browser the user signs in
// from: the runs whose logs the user read, and per job ("<job id>", or
// "type:<job type>" for ad-hoc runs) the newest failed run the user marked
// seen with everything before it ("mark all seen"). Each user reads and sets
// only their own marks.
#ifndef OPSKERNEL_PLUGINS_CONSOLE_SEEN_H
#define OPSKERNEL_PLUGINS_CONSOLE_SEEN_H

#include <opskernel/opk.hpp>

namespace opk::console {

// The read runs kept per user: older ones are forgotten beyond this many.
inline constexpr int kSeenRunsKept = 5000;
// The job marks kept per user: those least recently set are forgotten beyond
// this many (at least one request's worth).
inline constexpr int kSeenJobsKept = 2000;

class SeenMarks {
 public:
  explicit SeenMarks(Host host) : host_(host) {}

  // Creates or updates the plugin's tables.
  Status migrate() const;
  // GET /api/v1/console/seen: the caller's marks, {"runs": [id, ...] newest
  // first, "jobs": {"<job key>": run id, ...}}.
  Status get(const Request& rq, Response& rs) const;
  // POST /api/v1/console/seen {"runs": [id, ...], "jobs": {"<job key>": run
  // id}}: adds the caller's marks (a job's mark only moves forward); 204.
  Status post(const Request& rq, Response& rs) const;

 private:
  Host host_;
};

}  // namespace opk::console

#endif
