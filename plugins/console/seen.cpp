// The console users' seen marks (seen.h). Portable SQL (SQLite and
// PostgreSQL): $n parameters, BIGINT and TEXT, ON CONFLICT.
//
// Not audited: a seen mark changes nothing but what the Attention page and
// the unread-log markers show to the user who set it; it grants, hides from
// others and stops nothing, and each user can set only their own. The
// kernel's other view state (a user's language, time zone, theme) is not
// audited either.
#include "seen.h"

#include <opskernel/route_input.hpp>

#include <algorithm>
#include <charconv>
#include <set>
#include <string_view>

namespace opk::console {
namespace {

const char* const kSeenSchemaV1 =
    "CREATE TABLE p_console_read_runs (user_id TEXT NOT NULL, run_id BIGINT NOT NULL, read_ms BIGINT NOT NULL, "
    "PRIMARY KEY (user_id, run_id));"
    "CREATE TABLE p_console_seen_jobs (user_id TEXT NOT NULL, job_key TEXT NOT NULL, up_to_run_id BIGINT NOT NULL, "
    "seen_ms BIGINT NOT NULL, PRIMARY KEY (user_id, job_key))";

// At most this many marks in one request.
constexpr size_t kMaxMarks = 1000;

int64_t seen_int(const Json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_string()) {
    // Read back as text (the columns are BIGINT): not a number reads as 0
    // instead of throwing through the route.
    const auto& text = v.get_ref<const std::string&>();
    int64_t n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    return ec == std::errc() && end == text.data() + text.size() ? n : 0;
  }
  return 0;
}

// The longest job key a mark may name, in bytes.
constexpr size_t kMaxJobKey = 300;

// The first 40 bytes or so of a long job key, to name it in an error: cut
// before a character, so the error stays valid UTF-8.
std::string seen_key_start(const std::string& key) {
  size_t cut = std::min<size_t>(key.size(), 40);
  while (cut > 0 && cut < key.size() && (static_cast<unsigned char>(key[cut]) & 0xC0) == 0x80) --cut;
  return key.substr(0, cut);
}

// Whether `id` has the form of a job id or job type: 1 to 64 of [a-z0-9._-],
// starting with a letter or digit (the kernel's rule for both).
bool seen_id_form(std::string_view id) {
  auto first = [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'); };
  if (id.empty() || id.size() > 64 || !first(id[0])) return false;
  for (char ch : id)
    if (!first(ch) && ch != '.' && ch != '_' && ch != '-') return false;
  return true;
}

// Whether `key` is a job key: a job id or "type:<job type>".
bool seen_job_key_form(const std::string& key) {
  constexpr std::string_view kType = "type:";
  if (key.compare(0, kType.size(), kType) == 0) return seen_id_form(std::string_view(key).substr(kType.size()));
  return seen_id_form(key);
}

// A run id of the request: a positive whole number; `field` names it.
Status seen_run_id(const Json& v, const std::string& field, int64_t* out) {
  if (!v.is_number_integer() || v.get<int64_t>() < 1)
    return Status::invalid(field + ": must be a run id (a positive whole number)");
  *out = v.get<int64_t>();
  return Status::ok();
}

}  // namespace

Status SeenMarks::migrate() const {
  return Store(host_).migrate({{1, "the runs each user read and the jobs they marked seen", kSeenSchemaV1}});
}

Status SeenMarks::get(const Request& rq, Response& rs) const {
  const std::string user(rq.user_id());
  if (user.empty()) return input::refuse(rs, {OPK_ERR_PERMISSION, "seen marks belong to a user: this caller is none"});
  Store st(host_);
  Json runs, jobs;
  Status s = st.query("SELECT run_id FROM p_console_read_runs WHERE user_id = $1 ORDER BY run_id DESC LIMIT " +
                          std::to_string(kSeenRunsKept),
                      {user}, &runs);
  if (s)
    s = st.query("SELECT job_key, up_to_run_id FROM p_console_seen_jobs WHERE user_id = $1 ORDER BY job_key", {user},
                 &jobs);
  if (!s) return input::refuse(rs, s);
  Json out = {{"runs", Json::array()}, {"jobs", Json::object()}};
  for (const auto& r : runs) out["runs"].push_back(seen_int(r[0]));
  for (const auto& r : jobs) out["jobs"][r[0].get<std::string>()] = seen_int(r[1]);
  rs.status(200).header("cache-control", "no-store").json(out);
  return Status::ok();
}

Status SeenMarks::post(const Request& rq, Response& rs) const {
  const std::string user(rq.user_id());
  if (user.empty()) return input::refuse(rs, {OPK_ERR_PERMISSION, "seen marks belong to a user: this caller is none"});
  Json body;
  if (Status s = input::json_object(rq, {"runs", "jobs"}, &body); !s) return input::refuse(rs, s);
  const Json runs = body.value("runs", Json::array()), jobs = body.value("jobs", Json::object());
  if (!runs.is_array()) return input::refuse(rs, Status::invalid("runs: must be an array of run ids"));
  if (!jobs.is_object()) return input::refuse(rs, Status::invalid("jobs: must be an object of job keys and run ids"));
  if (runs.size() + jobs.size() > kMaxMarks)
    return input::refuse(rs, Status::invalid("request: more than " + std::to_string(kMaxMarks) + " marks at once"));
  const std::string now = std::to_string(host_.now_ms());
  std::vector<Store::Statement> writes;
  std::set<int64_t> ids;
  for (size_t i = 0; i < runs.size(); ++i) {
    int64_t id = 0;
    if (Status s = seen_run_id(runs[i], "runs[" + std::to_string(i) + "]", &id); !s) return input::refuse(rs, s);
    if (!ids.insert(id).second) continue;
    writes.push_back(
        {"INSERT INTO p_console_read_runs (user_id, run_id, read_ms) VALUES ($1, $2, $3) "
         "ON CONFLICT (user_id, run_id) DO NOTHING",
         {user, std::to_string(id), now}});
  }
  for (const auto& [key, value] : jobs.items()) {
    if (key.empty())
      return input::refuse(rs, Status::invalid("jobs: a job key is empty (a job id or type:<job type>)"));
    if (key.size() > kMaxJobKey)
      return input::refuse(rs, Status::invalid("jobs." + seen_key_start(key) + "...: the job key is longer than " +
                                               std::to_string(kMaxJobKey) + " bytes"));
    if (!seen_job_key_form(key))
      return input::refuse(rs, Status::invalid("jobs." + key +
                                               ": is not a job key (a job id or type:<job type>, each 1 to 64 of "
                                               "[a-z0-9._-])"));
    int64_t id = 0;
    if (Status s = seen_run_id(value, "jobs." + key, &id); !s) return input::refuse(rs, s);
    writes.push_back(
        {"INSERT INTO p_console_seen_jobs (user_id, job_key, up_to_run_id, seen_ms) VALUES ($1, $2, $3, $4) "
         "ON CONFLICT (user_id, job_key) DO UPDATE SET up_to_run_id = CASE WHEN excluded.up_to_run_id > "
         "p_console_seen_jobs.up_to_run_id THEN excluded.up_to_run_id ELSE p_console_seen_jobs.up_to_run_id "
         "END, seen_ms = excluded.seen_ms",
         {user, key, std::to_string(id), now}});
  }
  if (writes.empty()) return input::refuse(rs, Status::invalid("request: no marks (runs or jobs) given"));
  // The oldest read runs beyond the kept number are forgotten.
  if (!ids.empty())
    writes.push_back(
        {"DELETE FROM p_console_read_runs WHERE user_id = $1 AND run_id <= (SELECT run_id FROM "
         "p_console_read_runs WHERE user_id = $1 ORDER BY run_id DESC LIMIT 1 OFFSET " +
             std::to_string(kSeenRunsKept) + ")",
         {user}});
  // The job marks least recently set beyond the kept number are forgotten.
  if (!jobs.empty())
    writes.push_back(
        {"DELETE FROM p_console_seen_jobs WHERE user_id = $1 AND job_key NOT IN (SELECT job_key FROM "
         "p_console_seen_jobs WHERE user_id = $1 ORDER BY seen_ms DESC, up_to_run_id DESC, job_key LIMIT " +
             std::to_string(kSeenJobsKept) + ")",
         {user}});
  Json results;
  if (Status s = Store(host_).transaction(writes, &results); !s) return input::refuse(rs, s);
  rs.status(204);
  return Status::ok();
}

}  // namespace opk::console
