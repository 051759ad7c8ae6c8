// The notifications plugin's tables (repo.h). Numbers reach the store as
// text: every one compared with an expression or used as a limit is CAST,
// so SQLite and PostgreSQL compare numbers, not texts.
#include "repo.h"

#include <charconv>

#include "render.h"

namespace opk::notify {
namespace {

using P = Store::Param;

const char* const kSchemaV1 =
    "CREATE TABLE p_notifications_groups (id TEXT PRIMARY KEY, name TEXT NOT NULL, scope TEXT NOT NULL, "
    "description TEXT NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL);"
    "CREATE TABLE p_notifications_rules (id TEXT PRIMARY KEY, group_id TEXT NOT NULL, channel TEXT NOT NULL, "
    "enabled BIGINT NOT NULL, doc TEXT NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL);"
    "CREATE INDEX p_notifications_rules_group ON p_notifications_rules (group_id, id);"
    "CREATE TABLE p_notifications_job_groups (scheduled_job_id TEXT PRIMARY KEY, group_id TEXT NOT NULL, scope TEXT "
    "NOT NULL, updated_ms BIGINT NOT NULL);"
    "CREATE INDEX p_notifications_job_groups_group ON p_notifications_job_groups (group_id);"
    "CREATE TABLE p_notifications_cursor (consumer TEXT PRIMARY KEY, seq BIGINT NOT NULL, since_ms BIGINT NOT NULL);"
    "CREATE TABLE p_notifications_deliveries (id TEXT PRIMARY KEY, rule_id TEXT NOT NULL, group_id TEXT NOT NULL, "
    "scope TEXT NOT NULL, event_seq BIGINT NOT NULL, event_kind TEXT NOT NULL, event_subject TEXT NOT NULL, channel "
    "TEXT NOT NULL, recipient TEXT NOT NULL, endpoint TEXT NOT NULL, message TEXT NOT NULL, state TEXT NOT NULL, "
    "attempts BIGINT NOT NULL, next_attempt_ms BIGINT NOT NULL, lease_until_ms BIGINT NOT NULL, lease_owner TEXT NOT "
    "NULL, created_ms BIGINT "
    "NOT NULL, updated_ms BIGINT NOT NULL, last_code BIGINT, last_detail TEXT NOT NULL, render_error TEXT NOT NULL);"
    "CREATE INDEX p_notifications_deliveries_due ON p_notifications_deliveries (state, next_attempt_ms);"
    "CREATE INDEX p_notifications_deliveries_created ON p_notifications_deliveries (created_ms, id);"
    "CREATE INDEX p_notifications_deliveries_endpoint ON p_notifications_deliveries (endpoint, state);"
    "CREATE TABLE p_notifications_attempts (delivery_id TEXT NOT NULL, attempt BIGINT NOT NULL, time_ms BIGINT NOT "
    "NULL, outcome TEXT NOT NULL, code BIGINT NOT NULL, latency_ms BIGINT NOT NULL, detail TEXT NOT NULL, PRIMARY "
    "KEY (delivery_id, attempt));"
    "CREATE TABLE p_notifications_endpoints (endpoint TEXT PRIMARY KEY, channel TEXT NOT NULL, recipient TEXT NOT "
    "NULL, disabled BIGINT NOT NULL, disabled_reason TEXT NOT NULL, failures BIGINT NOT NULL, open_until_ms BIGINT "
    "NOT NULL, updated_ms BIGINT NOT NULL)";

// Version 2: the failures inbox's handled mark on deliveries and the
// endpoints' suppressions. ALTER TABLE ... ADD COLUMN with a default runs
// on SQLite and PostgreSQL alike.
const char* const kSchemaV2 =
    "ALTER TABLE p_notifications_deliveries ADD COLUMN handled_by TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE p_notifications_deliveries ADD COLUMN handled_ms BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE p_notifications_deliveries ADD COLUMN handled_note TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE p_notifications_suppressions (id TEXT PRIMARY KEY, endpoint TEXT NOT NULL, channel TEXT NOT NULL, "
    "recipient TEXT NOT NULL, scope TEXT NOT NULL, reason TEXT NOT NULL, until_ms BIGINT NOT NULL, created_by TEXT "
    "NOT NULL, created_ms BIGINT NOT NULL, lifted_by TEXT NOT NULL, lifted_ms BIGINT NOT NULL);"
    "CREATE INDEX p_notifications_suppressions_endpoint ON p_notifications_suppressions (endpoint, lifted_ms)";

// Version 3: the change counter of groups, rules and scheduled jobs' groups,
// moved in the transaction of each change: a consumer keeps what it matches
// events against in memory and reads it again when the counter moved (on
// this kernel or another sharing the store).
const char* const kSchemaV3 =
    "CREATE TABLE p_notifications_changes (id BIGINT PRIMARY KEY, counter BIGINT NOT NULL);"
    "INSERT INTO p_notifications_changes (id, counter) VALUES (1, 0)";
const char* const kBumpChanges = "UPDATE p_notifications_changes SET counter = counter + 1 WHERE id = 1";

// Written by enqueue (its VALUES follow this order).
const char* const kDeliveryColumns =
    "id, rule_id, group_id, scope, event_seq, event_kind, event_subject, channel, recipient, endpoint, message, "
    "state, attempts, next_attempt_ms, created_ms, updated_ms, last_code, last_detail, render_error";
// Read: the written columns and the handled mark.
const char* const kDeliveryRead =
    "id, rule_id, group_id, scope, event_seq, event_kind, event_subject, channel, recipient, endpoint, message, "
    "state, attempts, next_attempt_ms, created_ms, updated_ms, last_code, last_detail, render_error, handled_by, "
    "handled_ms, handled_note";
const char* const kSuppressionColumns =
    "id, endpoint, channel, recipient, scope, reason, until_ms, created_by, created_ms, lifted_by, lifted_ms";

std::string num(int64_t v) {
  return std::to_string(v);
}

int64_t int_of(const Json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number()) return static_cast<int64_t>(v.get<double>());
  if (v.is_string()) {
    int64_t n = 0;
    const std::string s = v.get<std::string>();
    std::from_chars(s.data(), s.data() + s.size(), n);
    return n;
  }
  return 0;
}

std::string str_of(const Json& v) {
  return v.is_string() ? v.get<std::string>() : std::string();
}

Group group_of(const Json& r) {
  return {str_of(r[0]), str_of(r[1]), str_of(r[2]), str_of(r[3]), int_of(r[4]), int_of(r[5])};
}

Delivery delivery_of(const Json& r) {
  Delivery d;
  d.id = str_of(r[0]);
  d.rule_id = str_of(r[1]);
  d.group_id = str_of(r[2]);
  d.scope = str_of(r[3]);
  d.event_seq = int_of(r[4]);
  d.event_kind = str_of(r[5]);
  d.event_subject = str_of(r[6]);
  d.channel = str_of(r[7]);
  d.recipient = str_of(r[8]);
  d.endpoint = str_of(r[9]);
  d.message = load_message(str_of(r[10]));
  d.state = str_of(r[11]);
  d.attempts = int_of(r[12]);
  d.next_attempt_ms = int_of(r[13]);
  d.created_ms = int_of(r[14]);
  d.updated_ms = int_of(r[15]);
  if (!r[16].is_null()) d.last_code = int_of(r[16]);
  d.last_detail = str_of(r[17]);
  d.render_error = str_of(r[18]);
  if (r.size() > 21) {
    d.handled_by = str_of(r[19]);
    d.handled_ms = int_of(r[20]);
    d.handled_note = str_of(r[21]);
  }
  return d;
}

Suppression suppression_of(const Json& r) {
  Suppression s;
  s.id = str_of(r[0]);
  s.endpoint = str_of(r[1]);
  s.channel = str_of(r[2]);
  s.recipient = str_of(r[3]);
  s.scope = str_of(r[4]);
  s.reason = str_of(r[5]);
  s.until_ms = int_of(r[6]);
  s.created_by = str_of(r[7]);
  s.created_ms = int_of(r[8]);
  s.lifted_by = str_of(r[9]);
  s.lifted_ms = int_of(r[10]);
  return s;
}

Endpoint endpoint_of(const Json& r) {
  return {str_of(r[0]), str_of(r[1]), str_of(r[2]), int_of(r[3]) != 0,
          str_of(r[4]), int_of(r[5]), int_of(r[6]), int_of(r[7])};
}

// A page cursor: "<created_ms>.<id>".
Status parse_cursor(const std::string& cursor, int64_t* ms, std::string* id) {
  const size_t dot = cursor.find('.');
  if (dot == std::string::npos || dot == 0) return Status::invalid("cursor: not a cursor this API gave");
  auto [end, ec] = std::from_chars(cursor.data(), cursor.data() + dot, *ms);
  if (ec != std::errc() || end != cursor.data() + dot) return Status::invalid("cursor: not a cursor this API gave");
  *id = cursor.substr(dot + 1);
  if (id->rfind("msg_", 0) != 0) return Status::invalid("cursor: not a cursor this API gave");
  return Status::ok();
}

// The WHERE clause and parameters of a deliveries query (`states` set: the
// state must be one of them).
std::string where_of(const DeliveryQuery& q, const std::vector<std::string>& states, std::vector<P>* params) {
  std::string w = "1 = 1";
  auto add = [&](const std::string& clause, const std::string& value) {
    params->push_back(value);
    std::string c = clause;
    const std::string n = "$" + std::to_string(params->size());
    for (size_t at = c.find('?'); at != std::string::npos; at = c.find('?', at + n.size())) c.replace(at, 1, n);
    w += " AND " + c;
  };
  if (!q.state.empty()) add("state = ?", q.state);
  if (!states.empty()) {
    std::string in;
    for (const auto& s : states) {
      params->push_back(s);
      in += (in.empty() ? "$" : ", $") + std::to_string(params->size());
    }
    w += " AND state IN (" + in + ")";
  }
  if (!q.channel.empty()) add("channel = ?", q.channel);
  if (!q.rule.empty()) add("rule_id = ?", q.rule);
  if (!q.recipient.empty()) add("recipient = ?", q.recipient);
  if (q.handled) w += *q.handled ? " AND handled_ms > 0" : " AND handled_ms = 0";
  if (!q.event_kind.empty()) add("event_kind = ?", q.event_kind);
  if (q.since_ms > 0) add("created_ms >= CAST(? AS BIGINT)", num(q.since_ms));
  if (q.until_ms > 0) add("created_ms < CAST(? AS BIGINT)", num(q.until_ms));
  return w;
}

}  // namespace

Repo::Repo(const Host& host) : host_(host), store_(host_) {}

Status Repo::migrate() const {
  return store_.migrate({{1, "groups, rules, outbox", kSchemaV1},
                         {2, "handled failures, suppressions", kSchemaV2},
                         {3, "change counter", kSchemaV3}});
}

Status Repo::change(const std::string& sql, const std::vector<P>& params, int64_t* changed) const {
  Json results;
  if (Status s = store_.transaction({{sql, params}, {kBumpChanges, {}}}, &results); !s) return s;
  if (changed)
    *changed =
        results.is_array() && !results.empty() && results[0].is_object() ? results[0].value("changed", int64_t{0}) : 0;
  return Status::ok();
}

Status Repo::changes(int64_t* counter) const {
  Json r;
  if (Status s = rows("SELECT counter FROM p_notifications_changes WHERE id = 1", {}, &r); !s) return s;
  if (r.empty()) return Status(OPK_ERR_INTERNAL, "the change counter row of p_notifications_changes is missing");
  *counter = int_of(r[0][0]);
  return Status::ok();
}

Status Repo::rows(const std::string& sql, const std::vector<P>& params, Json* out) const {
  Status s = store_.query(sql, params, out);
  if (s && !out->is_array()) return Status(OPK_ERR_INTERNAL, "store answer is not a list of rows");
  return s;
}

Status Repo::page(const DeliveryQuery& q, const std::vector<std::string>& states, std::vector<Delivery>* out,
                  std::string* next) const {
  std::vector<P> params;
  std::string where = where_of(q, states, &params);
  if (!q.cursor.empty()) {
    int64_t ms = 0;
    std::string id;
    if (Status s = parse_cursor(q.cursor, &ms, &id); !s) return s;
    params.push_back(num(ms));
    const std::string a = "$" + std::to_string(params.size());
    params.push_back(id);
    const std::string b = "$" + std::to_string(params.size());
    where +=
        " AND (created_ms < CAST(" + a + " AS BIGINT) OR (created_ms = CAST(" + a + " AS BIGINT) AND id < " + b + "))";
  }
  params.push_back(num(q.limit + 1));
  Json r;
  if (Status s =
          rows(std::string("SELECT ") + kDeliveryRead + " FROM p_notifications_deliveries WHERE " + where +
                   " ORDER BY created_ms DESC, id DESC LIMIT CAST($" + std::to_string(params.size()) + " AS BIGINT)",
               params, &r);
      !s)
    return s;
  out->clear();
  next->clear();
  for (size_t i = 0; i < r.size() && static_cast<int>(i) < q.limit; ++i) out->push_back(delivery_of(r[i]));
  if (static_cast<int>(r.size()) > q.limit && !out->empty()) *next = num(out->back().created_ms) + "." + out->back().id;
  return Status::ok();
}

// ------------------------------------------------------------------ groups

Status Repo::groups(std::vector<Group>* out) const {
  Json r;
  if (Status s = rows("SELECT id, name, scope, description, created_ms, updated_ms FROM p_notifications_groups "
                      "ORDER BY id",
                      {}, &r);
      !s)
    return s;
  out->clear();
  for (const auto& row : r) out->push_back(group_of(row));
  return Status::ok();
}

Status Repo::group(const std::string& id, Group* out) const {
  Json r;
  if (Status s = rows("SELECT id, name, scope, description, created_ms, updated_ms FROM p_notifications_groups "
                      "WHERE id = $1",
                      {id}, &r);
      !s)
    return s;
  if (r.empty()) return Status::not_found("no notification group '" + id + "'");
  *out = group_of(r[0]);
  return Status::ok();
}

Status Repo::insert_group(const Group& g) const {
  Status s = change(
      "INSERT INTO p_notifications_groups (id, name, scope, description, created_ms, updated_ms) VALUES ($1, $2, $3, "
      "$4, $5, $6)",
      {g.id, g.name, g.scope, g.description, num(g.created_ms), num(g.updated_ms)});
  if (s.code() == OPK_ERR_CONFLICT) return Status::conflict("id: a group '" + g.id + "' exists already");
  return s;
}

Status Repo::update_group(const Group& g) const {
  int64_t changed = 0;
  Status s =
      change("UPDATE p_notifications_groups SET name = $2, scope = $3, description = $4, updated_ms = $5 WHERE id = $1",
             {g.id, g.name, g.scope, g.description, num(g.updated_ms)}, &changed);
  if (s && changed == 0) return Status::not_found("no notification group '" + g.id + "'");
  return s;
}

Status Repo::delete_group(const std::string& id) const {
  Json r;
  if (Status s = rows("SELECT (SELECT COUNT(*) FROM p_notifications_rules WHERE group_id = $1), (SELECT COUNT(*) "
                      "FROM p_notifications_job_groups WHERE group_id = $1)",
                      {id}, &r);
      !s)
    return s;
  const int64_t rules = r.empty() ? 0 : int_of(r[0][0]), jobs = r.empty() ? 0 : int_of(r[0][1]);
  if (rules > 0 || jobs > 0)
    return Status::conflict("group '" + id + "' still has " + num(rules) + " rule(s) and " + num(jobs) +
                            " scheduled job(s) using it; delete the rules and move the jobs first");
  int64_t changed = 0;
  Status s = change("DELETE FROM p_notifications_groups WHERE id = $1", {id}, &changed);
  if (s && changed == 0) return Status::not_found("no notification group '" + id + "'");
  return s;
}

// ------------------------------------------------------------------- rules

Status Repo::rules(const std::string& group_id, std::vector<Rule>* out) const {
  Json r;
  Status s = group_id.empty()
                 ? rows("SELECT doc FROM p_notifications_rules ORDER BY group_id, id", {}, &r)
                 : rows("SELECT doc FROM p_notifications_rules WHERE group_id = $1 ORDER BY id", {group_id}, &r);
  if (!s) return s;
  out->clear();
  for (const auto& row : r) {
    Rule rule;
    if (Status p = from_stored(Json::parse(str_of(row[0]), nullptr, false), &rule); !p) return p;
    out->push_back(std::move(rule));
  }
  return Status::ok();
}

Status Repo::rule(const std::string& id, Rule* out) const {
  Json r;
  if (Status s = rows("SELECT doc FROM p_notifications_rules WHERE id = $1", {id}, &r); !s) return s;
  if (r.empty()) return Status::not_found("no notification rule '" + id + "'");
  return from_stored(Json::parse(str_of(r[0][0]), nullptr, false), out);
}

Status Repo::insert_rule(const Rule& r) const {
  Status s = change(
      "INSERT INTO p_notifications_rules (id, group_id, channel, enabled, doc, created_ms, updated_ms) VALUES ($1, "
      "$2, $3, $4, $5, $6, $7)",
      {r.id, r.group_id, r.channel, r.enabled ? "1" : "0", stored_json(r).dump(), num(r.created_ms),
       num(r.updated_ms)});
  if (s.code() == OPK_ERR_CONFLICT) return Status::conflict("id: a rule '" + r.id + "' exists already");
  return s;
}

Status Repo::update_rule(const Rule& r) const {
  int64_t changed = 0;
  Status s =
      change("UPDATE p_notifications_rules SET channel = $2, enabled = $3, doc = $4, updated_ms = $5 WHERE id = $1",
             {r.id, r.channel, r.enabled ? "1" : "0", stored_json(r).dump(), num(r.updated_ms)}, &changed);
  if (s && changed == 0) return Status::not_found("no notification rule '" + r.id + "'");
  return s;
}

Status Repo::delete_rule(const std::string& id) const {
  int64_t changed = 0;
  Status s = change("DELETE FROM p_notifications_rules WHERE id = $1", {id}, &changed);
  if (s && changed == 0) return Status::not_found("no notification rule '" + id + "'");
  return s;
}

// -------------------------------------------------------------- job groups

Status Repo::job_groups(std::vector<JobGroup>* out) const {
  Json r;
  if (Status s = rows("SELECT scheduled_job_id, group_id, scope, updated_ms FROM p_notifications_job_groups ORDER BY "
                      "scheduled_job_id",
                      {}, &r);
      !s)
    return s;
  out->clear();
  for (const auto& row : r) out->push_back({str_of(row[0]), str_of(row[1]), str_of(row[2]), int_of(row[3])});
  return Status::ok();
}

Status Repo::job_group(const std::string& job, JobGroup* out) const {
  Json r;
  if (Status s = rows("SELECT scheduled_job_id, group_id, scope, updated_ms FROM p_notifications_job_groups WHERE "
                      "scheduled_job_id = $1",
                      {job}, &r);
      !s)
    return s;
  if (r.empty()) return Status::not_found("scheduled job '" + job + "' has no notification group");
  *out = {str_of(r[0][0]), str_of(r[0][1]), str_of(r[0][2]), int_of(r[0][3])};
  return Status::ok();
}

Status Repo::put_job_group(const JobGroup& j) const {
  return change(
      "INSERT INTO p_notifications_job_groups (scheduled_job_id, group_id, scope, updated_ms) VALUES ($1, $2, $3, $4) "
      "ON CONFLICT (scheduled_job_id) DO UPDATE SET group_id = excluded.group_id, scope = excluded.scope, "
      "updated_ms = excluded.updated_ms",
      {j.scheduled_job_id, j.group_id, j.scope, num(j.updated_ms)});
}

Status Repo::delete_job_group(const std::string& job) const {
  int64_t changed = 0;
  Status s = change("DELETE FROM p_notifications_job_groups WHERE scheduled_job_id = $1", {job}, &changed);
  if (s && changed == 0) return Status::not_found("scheduled job '" + job + "' has no notification group");
  return s;
}

// ------------------------------------------------------------------ outbox

Status Repo::cursor(const std::string& consumer, int64_t now_ms, int64_t* seq, int64_t* since_ms) const {
  if (Status s = store_.execute(
          "INSERT INTO p_notifications_cursor (consumer, seq, since_ms) VALUES ($1, 0, $2) ON CONFLICT (consumer) DO "
          "NOTHING",
          {consumer, num(now_ms)});
      !s)
    return s;
  Json r;
  if (Status s = rows("SELECT seq, since_ms FROM p_notifications_cursor WHERE consumer = $1", {consumer}, &r); !s)
    return s;
  if (r.empty()) return Status(OPK_ERR_INTERNAL, "the cursor of '" + consumer + "' is missing");
  *seq = int_of(r[0][0]);
  *since_ms = int_of(r[0][1]);
  return Status::ok();
}

Status Repo::read_cursor(const std::string& consumer, int64_t* seq, int64_t* since_ms) const {
  Json r;
  if (Status s = rows("SELECT seq, since_ms FROM p_notifications_cursor WHERE consumer = $1", {consumer}, &r); !s)
    return s;
  if (r.empty()) return Status::not_found("the cursor of '" + consumer + "' is missing");
  *seq = int_of(r[0][0]);
  *since_ms = int_of(r[0][1]);
  return Status::ok();
}

Status Repo::enqueue(const std::string& consumer, const std::vector<Delivery>& deliveries, int64_t seq) const {
  std::vector<Store::Statement> st;
  st.reserve(deliveries.size() + 1);
  for (const auto& d : deliveries)
    st.push_back(
        {std::string("INSERT INTO p_notifications_deliveries (") + kDeliveryColumns +
             ", lease_until_ms, lease_owner) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, "
             "$14, $15, $16, NULL, '', $17, 0, '') ON CONFLICT (id) DO NOTHING",
         {d.id, d.rule_id, d.group_id, d.scope, num(d.event_seq), d.event_kind, d.event_subject, d.channel, d.recipient,
          d.endpoint,
          d.message_text.empty() ? d.message.dump(-1, ' ', false, Json::error_handler_t::replace) : d.message_text,
          d.state, num(d.attempts), num(d.next_attempt_ms), num(d.created_ms), num(d.updated_ms), d.render_error}});
  st.push_back({"UPDATE p_notifications_cursor SET seq = $2 WHERE consumer = $1 AND seq < CAST($2 AS BIGINT)",
                {consumer, num(seq)}});
  Json results;
  return store_.transaction(st, &results);
}

Status Repo::deliveries(const DeliveryQuery& q, std::vector<Delivery>* out, std::string* next) const {
  return page(q, {}, out, next);
}

Status Repo::delivery(const std::string& id, Delivery* out, std::vector<Attempt>* attempts) const {
  Json r;
  if (Status s =
          rows(std::string("SELECT ") + kDeliveryRead + " FROM p_notifications_deliveries WHERE id = $1", {id}, &r);
      !s)
    return s;
  if (r.empty()) return Status::not_found("no delivery '" + id + "'");
  *out = delivery_of(r[0]);
  if (attempts == nullptr) return Status::ok();
  Json a;
  if (Status s = rows("SELECT attempt, time_ms, outcome, code, latency_ms, detail FROM p_notifications_attempts WHERE "
                      "delivery_id = $1 ORDER BY attempt",
                      {id}, &a);
      !s)
    return s;
  attempts->clear();
  for (const auto& row : a)
    attempts->push_back(
        {int_of(row[0]), int_of(row[1]), str_of(row[2]), int_of(row[3]), int_of(row[4]), str_of(row[5])});
  return Status::ok();
}

Status Repo::due(int64_t now_ms, int limit, std::vector<std::string>* ids) const {
  Json r;
  if (Status s = rows("SELECT d.id FROM p_notifications_deliveries d LEFT JOIN p_notifications_endpoints e ON "
                      "e.endpoint = d.endpoint WHERE ((d.state = 'pending' AND d.next_attempt_ms <= CAST($1 AS "
                      "BIGINT)) OR (d.state = 'sending' AND d.lease_until_ms <= CAST($1 AS BIGINT))) AND (e.endpoint "
                      "IS NULL OR e.open_until_ms <= CAST($1 AS BIGINT)) ORDER BY d.next_attempt_ms, d.id LIMIT "
                      "CAST($2 AS BIGINT)",
                      {num(now_ms), num(limit)}, &r);
      !s)
    return s;
  ids->clear();
  for (const auto& row : r) ids->push_back(str_of(row[0]));
  return Status::ok();
}

Status Repo::claim_many(const std::vector<std::string>& ids, int64_t now_ms, int64_t lease_until_ms,
                        const std::string& owner, std::vector<Delivery>* out) const {
  out->clear();
  if (ids.empty()) return Status::ok();
  std::vector<Store::Statement> st;
  for (const auto& id : ids)
    st.push_back({std::string("UPDATE p_notifications_deliveries SET state = 'sending', attempts = attempts + 1, "
                              "lease_until_ms = $3, lease_owner = $4, updated_ms = $2 WHERE id = $1 AND ((state = "
                              "'pending' AND next_attempt_ms <= CAST($2 AS BIGINT)) OR (state = 'sending' AND "
                              "lease_until_ms <= CAST($2 AS BIGINT))) RETURNING ") +
                      kDeliveryColumns,
                  {id, num(now_ms), num(lease_until_ms), owner}});
  Json results;
  if (Status s = store_.transaction(st, &results); !s) return s;
  if (!results.is_array()) return Status(OPK_ERR_INTERNAL, "store answer is not a list of results");
  for (const auto& r : results)
    if (r.contains("rows") && r["rows"].is_array() && !r["rows"].empty()) out->push_back(delivery_of(r["rows"][0]));
  return Status::ok();
}

Status Repo::recover(const std::string& owner, int64_t now_ms, int64_t* recovered) const {
  std::vector<Store::Statement> st;
  st.push_back(
      {"INSERT INTO p_notifications_attempts (delivery_id, attempt, time_ms, outcome, code, latency_ms, "
       "detail) SELECT id, attempts, $2, 'interrupted', 0, 0, 'the kernel stopped during this attempt; the "
       "receiver may have it already (the same id comes again)' FROM p_notifications_deliveries WHERE state "
       "= 'sending' AND lease_owner = $1 ON CONFLICT (delivery_id, attempt) DO NOTHING",
       {owner, num(now_ms)}});
  st.push_back(
      {"UPDATE p_notifications_deliveries SET state = 'pending', lease_until_ms = 0, next_attempt_ms = $2, "
       "updated_ms = $2 WHERE state = 'sending' AND lease_owner = $1",
       {owner, num(now_ms)}});
  Json results;
  Status s = store_.transaction(st, &results);
  if (s && recovered)
    *recovered = results.is_array() && results.size() == 2 ? results[1].value("changed", int64_t{0}) : 0;
  return s;
}

Status Repo::release(const std::string& id, int64_t next_ms) const {
  return store_.execute(
      "UPDATE p_notifications_deliveries SET state = 'pending', attempts = attempts - 1, lease_until_ms = 0, "
      "next_attempt_ms = $2 WHERE id = $1 AND state = 'sending'",
      {id, num(next_ms)});
}

Status Repo::next_due(int64_t* ms) const {
  Json r;
  if (Status s = rows("SELECT MIN(next_attempt_ms) FROM p_notifications_deliveries WHERE state = 'pending'", {}, &r);
      !s)
    return s;
  *ms = r.empty() || r[0][0].is_null() ? 0 : int_of(r[0][0]);
  return Status::ok();
}

Status Repo::record(const Delivery& d, const Outcome& o) const {
  const Attempt& a = o.attempt;
  std::vector<Store::Statement> st;
  st.push_back(
      {"INSERT INTO p_notifications_attempts (delivery_id, attempt, time_ms, outcome, code, latency_ms, "
       "detail) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (delivery_id, attempt) DO UPDATE SET time_ms "
       "= excluded.time_ms, outcome = excluded.outcome, code = excluded.code, latency_ms = "
       "excluded.latency_ms, detail = excluded.detail",
       {d.id, num(a.attempt), num(a.time_ms), a.outcome, num(a.code), num(a.latency_ms), a.detail}});
  st.push_back(
      {"UPDATE p_notifications_deliveries SET state = $2, next_attempt_ms = $3, lease_until_ms = 0, "
       "updated_ms = $4, last_code = $5, last_detail = $6 WHERE id = $1",
       {d.id, o.state, num(o.next_ms), num(a.time_ms), a.code ? P(num(a.code)) : P(), a.detail}});
  const std::string now = num(a.time_ms);
  if (o.success && !o.endpoint_clean) {
    st.push_back(
        {"INSERT INTO p_notifications_endpoints (endpoint, channel, recipient, disabled, disabled_reason, "
         "failures, open_until_ms, updated_ms) VALUES ($1, $2, $3, 0, '', 0, 0, $4) ON CONFLICT (endpoint) "
         "DO UPDATE SET failures = 0, open_until_ms = 0, updated_ms = excluded.updated_ms",
         {d.endpoint, d.channel, d.recipient, now}});
  } else if (o.disable || o.count_failure) {
    st.push_back(
        {"INSERT INTO p_notifications_endpoints (endpoint, channel, recipient, disabled, disabled_reason, failures, "
         "open_until_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, 1, CASE WHEN 1 >= CAST($6 AS BIGINT) THEN CAST($7 AS "
         "BIGINT) ELSE 0 END, $8) ON CONFLICT (endpoint) DO UPDATE SET disabled = CASE WHEN excluded.disabled = 1 "
         "THEN 1 ELSE p_notifications_endpoints.disabled END, disabled_reason = CASE WHEN excluded.disabled = 1 THEN "
         "excluded.disabled_reason ELSE p_notifications_endpoints.disabled_reason END, failures = "
         "p_notifications_endpoints.failures + 1, open_until_ms = CASE WHEN p_notifications_endpoints.failures + 1 >= "
         "CAST($6 AS BIGINT) THEN CAST($7 AS BIGINT) ELSE p_notifications_endpoints.open_until_ms END, updated_ms = "
         "excluded.updated_ms",
         {d.endpoint, d.channel, d.recipient, o.disable ? "1" : "0", o.disable ? o.reason : "",
          num(o.count_failure ? o.circuit_failures : INT64_MAX), num(o.open_until_ms), now}});
  }
  Json results;
  return store_.transaction(st, &results);
}

Status Repo::skip(const std::string& id, const std::string& detail, int64_t now_ms) const {
  return store_.execute(
      "UPDATE p_notifications_deliveries SET state = 'skipped', attempts = attempts - 1, lease_until_ms = 0, "
      "updated_ms = $2, last_detail = $3 WHERE id = $1",
      {id, num(now_ms), detail});
}

// ---------------------------------------------------------------- endpoints

Status Repo::endpoint(const std::string& endpoint, Endpoint* out) const {
  Json r;
  if (Status s = rows("SELECT endpoint, channel, recipient, disabled, disabled_reason, failures, open_until_ms, "
                      "updated_ms FROM p_notifications_endpoints WHERE endpoint = $1",
                      {endpoint}, &r);
      !s)
    return s;
  if (r.empty()) return Status::not_found("no endpoint '" + endpoint + "'");
  *out = endpoint_of(r[0]);
  return Status::ok();
}

Status Repo::endpoints(bool disabled_only, std::vector<Endpoint>* out) const {
  Json r;
  if (Status s = rows(std::string("SELECT endpoint, channel, recipient, disabled, disabled_reason, failures, "
                                  "open_until_ms, updated_ms FROM p_notifications_endpoints") +
                          (disabled_only ? " WHERE disabled = 1" : "") + " ORDER BY endpoint",
                      {}, &r);
      !s)
    return s;
  out->clear();
  for (const auto& row : r) out->push_back(endpoint_of(row));
  return Status::ok();
}

Status Repo::enable(const std::string& endpoint, int64_t now_ms) const {
  int64_t changed = 0;
  Status s = store_.execute(
      "UPDATE p_notifications_endpoints SET disabled = 0, disabled_reason = '', failures = 0, open_until_ms = 0, "
      "updated_ms = $2 WHERE endpoint = $1",
      {endpoint, num(now_ms)}, &changed);
  if (s && changed == 0) return Status::not_found("no endpoint '" + endpoint + "'");
  return s;
}

Status Repo::take_probe(const std::string& endpoint, int64_t now_ms, int64_t until_ms, bool* won) const {
  int64_t changed = 0;
  Status s = store_.execute(
      "UPDATE p_notifications_endpoints SET open_until_ms = $3 WHERE endpoint = $1 AND open_until_ms <= CAST($2 AS "
      "BIGINT)",
      {endpoint, num(now_ms), num(until_ms)}, &changed);
  *won = s && changed == 1;
  return s;
}

Status Repo::wake_endpoint(const std::string& endpoint, int64_t now_ms) const {
  return store_.execute(
      "UPDATE p_notifications_deliveries SET next_attempt_ms = $2 WHERE endpoint = $1 AND state = 'pending' AND "
      "next_attempt_ms > CAST($2 AS BIGINT)",
      {endpoint, num(now_ms)});
}

Status Repo::failed(const DeliveryQuery& q, std::vector<Delivery>* out, std::string* next) const {
  return page(q, {kDead, kFailed}, out, next);
}

Status Repo::replay(const std::string& id, int64_t now_ms) const {
  Delivery d;
  if (Status s = delivery(id, &d, nullptr); !s) return s;
  if (d.state != kDead && d.state != kFailed && d.state != kSkipped)
    return Status::conflict("delivery '" + id + "' is " + d.state + "; only dead, failed or skipped ones are replayed");
  int64_t changed = 0;
  Status s = store_.execute(
      "UPDATE p_notifications_deliveries SET state = 'pending', next_attempt_ms = $2, updated_ms = $2, handled_by = "
      "'', "
      "handled_ms = 0, handled_note = '' WHERE id = $1 AND state = $3",
      {id, num(now_ms), d.state}, &changed);
  if (s && changed == 0) return Status::conflict("delivery '" + id + "' changed meanwhile; try again");
  return s;
}

Status Repo::handle(const std::string& id, const std::string& by, const std::string& note, int64_t now_ms) const {
  int64_t changed = 0;
  Status s = store_.execute(
      "UPDATE p_notifications_deliveries SET handled_by = $2, handled_ms = $3, handled_note = $4 WHERE id = $1 AND "
      "state IN ('dead', 'failed')",
      {id, by, num(now_ms), note}, &changed);
  if (s && changed == 0) {
    Delivery d;
    if (Status f = delivery(id, &d, nullptr); !f) return f;
    return Status::conflict("delivery '" + id + "' is " + d.state + "; only dead or failed ones are handled");
  }
  return s;
}

Status Repo::failure_counts(std::vector<FailureCount>* out) const {
  Json r;
  if (Status s = rows("SELECT scope, CASE WHEN handled_ms > 0 THEN 1 ELSE 0 END, COUNT(*) FROM "
                      "p_notifications_deliveries WHERE state IN ('dead', 'failed') GROUP BY scope, CASE WHEN "
                      "handled_ms > 0 THEN 1 ELSE 0 END",
                      {}, &r);
      !s)
    return s;
  out->clear();
  for (const auto& row : r) out->push_back({str_of(row[0]), int_of(row[1]) != 0, int_of(row[2])});
  return Status::ok();
}

// ------------------------------------------------------------- suppressions

Status Repo::insert_suppression(const Suppression& x) const {
  Status s = store_.execute(std::string("INSERT INTO p_notifications_suppressions (") + kSuppressionColumns +
                                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                            {x.id, x.endpoint, x.channel, x.recipient, x.scope, x.reason, num(x.until_ms), x.created_by,
                             num(x.created_ms), x.lifted_by, num(x.lifted_ms)});
  if (s.code() == OPK_ERR_CONFLICT) return Status::conflict("id: a suppression '" + x.id + "' exists already");
  return s;
}

Status Repo::suppression(const std::string& id, Suppression* out) const {
  Json r;
  if (Status s = rows(std::string("SELECT ") + kSuppressionColumns + " FROM p_notifications_suppressions WHERE id = $1",
                      {id}, &r);
      !s)
    return s;
  if (r.empty()) return Status::not_found("no suppression '" + id + "'");
  *out = suppression_of(r[0]);
  return Status::ok();
}

Status Repo::active_suppressions(const std::string& endpoint, int64_t now_ms, std::vector<Suppression>* out) const {
  Json r;
  std::vector<P> params = {num(now_ms)};
  std::string where = "lifted_ms = 0 AND (until_ms = 0 OR until_ms > CAST($1 AS BIGINT))";
  if (!endpoint.empty()) {
    params.push_back(endpoint);
    where += " AND endpoint = $2";
  }
  if (Status s = rows(std::string("SELECT ") + kSuppressionColumns + " FROM p_notifications_suppressions WHERE " +
                          where + " ORDER BY created_ms, id",
                      params, &r);
      !s)
    return s;
  out->clear();
  for (const auto& row : r) out->push_back(suppression_of(row));
  return Status::ok();
}

Status Repo::expired_suppressions(int64_t now_ms, std::vector<Suppression>* out) const {
  Json r;
  if (Status s = rows(std::string("SELECT ") + kSuppressionColumns +
                          " FROM p_notifications_suppressions WHERE lifted_ms = 0 AND until_ms > 0 AND until_ms <= "
                          "CAST($1 AS BIGINT) ORDER BY until_ms, id",
                      {num(now_ms)}, &r);
      !s)
    return s;
  out->clear();
  for (const auto& row : r) out->push_back(suppression_of(row));
  return Status::ok();
}

Status Repo::lift(const std::string& id, const std::string& by, int64_t now_ms) const {
  int64_t changed = 0;
  Status s = store_.execute(
      "UPDATE p_notifications_suppressions SET lifted_by = $2, lifted_ms = $3 WHERE id = $1 AND lifted_ms = 0",
      {id, by, num(now_ms)}, &changed);
  if (s && changed == 0) {
    Suppression x;
    if (Status f = suppression(id, &x); !f) return f;
    return Status::conflict("suppression '" + id + "' was lifted already");
  }
  return s;
}

Status Repo::hold(const std::string& id, const std::string& detail, int64_t now_ms) const {
  return store_.execute(
      "UPDATE p_notifications_deliveries SET state = 'suppressed', attempts = attempts - 1, lease_until_ms = 0, "
      "updated_ms = $2, last_detail = $3 WHERE id = $1 AND state = 'sending'",
      {id, num(now_ms), detail});
}

Status Repo::held(const std::string& endpoint, std::vector<std::pair<std::string, std::string>>* out) const {
  Json r;
  if (Status s = rows("SELECT id, scope FROM p_notifications_deliveries WHERE endpoint = $1 AND state = 'suppressed' "
                      "ORDER BY created_ms, id",
                      {endpoint}, &r);
      !s)
    return s;
  out->clear();
  for (const auto& row : r) out->emplace_back(str_of(row[0]), str_of(row[1]));
  return Status::ok();
}

Status Repo::resume(const std::vector<std::string>& ids, int64_t now_ms) const {
  if (ids.empty()) return Status::ok();
  std::vector<Store::Statement> st;
  for (const auto& id : ids)
    st.push_back(
        {"UPDATE p_notifications_deliveries SET state = 'pending', next_attempt_ms = $2, updated_ms = $2 "
         "WHERE id = $1 AND state = 'suppressed'",
         {id, num(now_ms)}});
  Json results;
  return store_.transaction(st, &results);
}

// ------------------------------------------------------------------- JSON

Json to_json(const Delivery& d, bool with_message) {
  Json o = {{"id", d.id},
            {"rule_id", d.rule_id},
            {"group_id", d.group_id.empty() ? Json() : Json(d.group_id)},
            {"scope", d.scope},
            {"event", {{"seq", d.event_seq}, {"kind", d.event_kind}, {"subject", d.event_subject}}},
            {"channel", d.channel},
            {"recipient", d.recipient},
            {"state", d.state},
            {"attempts", d.attempts},
            {"next_attempt_ms", d.state == kPending ? Json(d.next_attempt_ms) : Json()},
            {"created_ms", d.created_ms},
            {"updated_ms", d.updated_ms},
            {"last_code", d.last_code ? Json(*d.last_code) : Json()},
            {"last_detail", d.last_detail},
            {"render_error", d.render_error.empty() ? Json() : Json(d.render_error)},
            {"handled_by", d.handled_ms > 0 ? Json(d.handled_by) : Json()},
            {"handled_ms", d.handled_ms > 0 ? Json(d.handled_ms) : Json()},
            {"handled_note", d.handled_ms > 0 && !d.handled_note.empty() ? Json(d.handled_note) : Json()}};
  if (with_message) {
    Json m = Json::object();
    for (const char* k : {"subject", "body", "html_body", "content_type"})
      if (d.message.contains(k)) m[k] = d.message[k];
    o["message"] = m;
  }
  return o;
}

Json to_json(const Attempt& a) {
  return {{"attempt", a.attempt}, {"time_ms", a.time_ms},       {"outcome", a.outcome},
          {"code", a.code},       {"latency_ms", a.latency_ms}, {"detail", a.detail}};
}

Json to_json(const Endpoint& e) {
  return {{"endpoint", e.endpoint},
          {"channel", e.channel},
          {"recipient", e.recipient},
          {"disabled", e.disabled},
          {"disabled_reason", e.disabled_reason.empty() ? Json() : Json(e.disabled_reason)},
          {"failures", e.failures},
          {"open_until_ms", e.open_until_ms ? Json(e.open_until_ms) : Json()},
          {"updated_ms", e.updated_ms}};
}

Json to_json(const Suppression& s) {
  return {{"id", s.id},
          {"endpoint", s.endpoint},
          {"channel", s.channel},
          {"recipient", s.recipient},
          {"scope", s.scope},
          {"reason", s.reason.empty() ? Json() : Json(s.reason)},
          {"until_ms", s.until_ms > 0 ? Json(s.until_ms) : Json()},
          {"created_by", s.created_by},
          {"created_ms", s.created_ms},
          {"lifted_by", s.lifted_ms > 0 ? Json(s.lifted_by) : Json()},
          {"lifted_ms", s.lifted_ms > 0 ? Json(s.lifted_ms) : Json()}};
}

}  // namespace opk::notify
