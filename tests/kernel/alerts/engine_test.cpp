// The alert engine on a real store: dedup, update, reopen, clear, the
// operators' actions with their audit rows, the visibility matrix over a
// two-branch hierarchy (list, get, counts and every action), flapping, full
// sweeps and the escalation rules across a restart. Time is a ManualClock.
#include <gtest/gtest.h>

#include <opskernel/json.hpp>

#include <memory>
#include <set>

#include "alerts/alerts.h"
#include "clock/clock.h"
#include "identity/identity.h"
#include "store/open.h"
#include "store/store.h"
#include "support/test_util.h"

namespace opk::alerts {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;
constexpr int64_t kHour = 3600 * 1000;

class AlertEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clock::install(&clock_);
    ASSERT_TRUE(store::open_sqlite((dir_.path() / "opk.db").string(), false, &store_));
    identity_ = std::make_unique<identity::Identity>(*store_, identity::default_permissions());
    for (const char* b : {"1", "2"}) {
      const std::string n = b;
      ASSERT_TRUE(identity_->add_node("distributor:d" + n, "platform", "D" + n));
      ASSERT_TRUE(identity_->add_node("partner:p" + n, "distributor:d" + n, "P" + n));
      ASSERT_TRUE(identity_->add_node("tenant:t" + n, "partner:p" + n, "T" + n));
      ASSERT_TRUE(identity_->add_node("subscription:s" + n, "tenant:t" + n, "S" + n));
    }
    make_engine();
  }
  void TearDown() override { clock::install(nullptr); }
  void make_engine(Options o = {}) { engine_ = std::make_unique<Engine>(*store_, *identity_, std::move(o)); }

  SourceInfo source(const std::string& id = "missing-usage", bool platform_only = false) {
    return {id, "plugin-" + id, "billing", platform_only, false, 1};
  }
  static Raise raise_of(const std::string& related_id, const std::string& scope,
                        const std::string& severity = "warning", const std::string& title = "No usage") {
    Raise r;
    r.severity = severity;
    r.title = title;
    r.message = "nothing recorded";
    r.related_type = "subscription";
    r.related_id = related_id;
    r.scope = scope;
    return r;
  }
  store::AlertRow raise(const SourceInfo& src, const Raise& r) {
    store::AlertRow a;
    Status s = engine_->raise(src, r, "system:" + src.plugin, &a);
    EXPECT_TRUE(s) << s.message();
    return a;
  }
  std::vector<store::AuditRow> audit_of(const std::string& action) {
    std::vector<store::AuditRow> out;
    for (auto& a : store_->audit_rows(1000).value())
      if (a.action == action) out.push_back(a);
    return out;
  }

  test::TempDir dir_;
  clock::ManualClock clock_{kT0};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<identity::Identity> identity_;
  std::unique_ptr<Engine> engine_;
  const Actor admin_{"alice", "PlatformAdministrator", "platform", "10.0.0.1"};
};

TEST_F(AlertEngineTest, RaisingAgainUpdatesTheOpenAlertAndKeepsHistorySmall) {
  const auto first = raise(source(), raise_of("sub-1", "subscription:s1"));
  ASSERT_GT(first.id, 0);
  EXPECT_EQ(first.status, "open");
  EXPECT_EQ(first.type, "missing-usage");
  EXPECT_EQ(first.area, "billing");
  clock_.advance(1000);
  const auto same = raise(source(), raise_of("sub-1", "subscription:s1"));
  EXPECT_EQ(same.id, first.id);
  EXPECT_EQ(same.occurrences, 2);
  EXPECT_EQ(same.first_seen_ms, kT0);
  EXPECT_EQ(same.last_seen_ms, kT0 + 1000);
  clock_.advance(1000);
  const auto worse = raise(source(), raise_of("sub-1", "subscription:s1", "critical"));
  EXPECT_EQ(worse.id, first.id);
  EXPECT_EQ(worse.severity, "critical");
  EXPECT_EQ(worse.occurrences, 3);
  clock_.advance(1000);
  const auto better = raise(source(), raise_of("sub-1", "subscription:s1", "info"));
  EXPECT_EQ(better.severity, "info");

  Detail d;
  ASSERT_TRUE(engine_->get(admin_, first.id, &d));
  ASSERT_EQ(d.history.size(), 3u);  // raised, updated (critical), updated (info): the repeat added none
  EXPECT_EQ(d.history[0].kind, "raised");
  EXPECT_EQ(d.history[1].kind, "updated");
  EXPECT_EQ(nlohmann::json::parse(d.history[1].details_json)["was"]["severity"], "warning");
  EXPECT_EQ(d.history[2].kind, "updated");
  EXPECT_EQ(d.alert.occurrences, 4);
}

TEST_F(AlertEngineTest, OneOpenAlertPerObjectIsEnforcedByTheStore) {
  raise(source(), raise_of("sub-1", "subscription:s1"));
  store::AlertRow dup;
  dup.source = "missing-usage";
  dup.type = "missing-usage";
  dup.title = "again";
  dup.related_type = "subscription";
  dup.related_id = "sub-1";
  dup.scope = "subscription:s1";
  dup.scope_level = "subscription";
  dup.scope_path = identity_->path("subscription:s1");
  dup.first_seen_ms = dup.last_seen_ms = kT0;
  std::vector<store::AlertSave> saves = {{dup, {}}};
  Status s = store_->save_alerts(&saves);
  EXPECT_EQ(s.code(), OPK_ERR_CONFLICT) << s.message();
  store::AlertQuery q;
  q.view.all = true;
  q.statuses = {"open", "acknowledged", "escalated", "closed"};
  EXPECT_EQ(store_->list_alerts(q).value().size(), 1u);
}

TEST_F(AlertEngineTest, ClearClosesAndARecurrenceOpensANewRecordNamingThePrevious) {
  const auto a = raise(source(), raise_of("sub-1", "subscription:s1"));
  store::AlertRow closed;
  ASSERT_TRUE(engine_->clear(source(), "subscription", "sub-1", "system:plugin-missing-usage", "", &closed));
  EXPECT_EQ(closed.id, a.id);
  EXPECT_EQ(closed.status, "closed");
  EXPECT_EQ(closed.close_kind, "cleared");
  EXPECT_EQ(closed.closed_by, "system:plugin-missing-usage");
  // Clearing again is no error and changes nothing.
  store::AlertRow none;
  EXPECT_TRUE(engine_->clear(source(), "subscription", "sub-1", "system:x", "", &none));
  EXPECT_EQ(none.id, 0);

  clock_.advance(kHour * 2);
  const auto b = raise(source(), raise_of("sub-1", "subscription:s1"));
  EXPECT_NE(b.id, a.id);
  EXPECT_EQ(b.previous_id, a.id);
  EXPECT_EQ(b.occurrences, 1);
  EXPECT_FALSE(b.flapping);
  Detail old, now;
  ASSERT_TRUE(engine_->get(admin_, a.id, &old));
  EXPECT_EQ(old.alert.status, "closed");  // closed is final
  EXPECT_EQ(old.history.back().kind, "reopened_as");
  EXPECT_EQ(nlohmann::json::parse(old.history.back().details_json)["id"], b.id);
  ASSERT_TRUE(engine_->get(admin_, b.id, &now));
  EXPECT_EQ(now.previous, std::vector<int64_t>{a.id});
}

TEST_F(AlertEngineTest, BadInputNamesTheFieldAndStoresNothing) {
  struct Case {
    std::function<void(Raise*)> spoil;
    std::string field;
  };
  const std::vector<Case> cases = {
      {[](Raise* r) { r->title.clear(); }, "title:"},
      {[](Raise* r) { r->severity = "fatal"; }, "severity:"},
      {[](Raise* r) { r->scope = "tenant:nobody"; }, "scope:"},
      {[](Raise* r) { r->scope.clear(); }, "scope:"},
      {[](Raise* r) { r->details_json = "[1,2]"; }, "details:"},
      {[](Raise* r) { r->details_json = "{not json"; }, "details:"},
      {[](Raise* r) { r->related_type.clear(); }, "related_type:"},
      {[](Raise* r) { r->related_id.clear(); }, "related_id:"},
      {[](Raise* r) { r->title = "disk\nfull"; }, "title: contains a control character (U+000A)"},
      {[](Raise* r) { r->message = std::string("cut") + std::string(1, '\0') + "here"; },
       "message: contains a control character (U+0000)"},
      {[](Raise* r) { r->related_id = "s1\x1b[31m"; }, "related_id: contains a control character (U+001B)"},
  };
  for (const auto& c : cases) {
    Raise r = raise_of("sub-1", "subscription:s1");
    c.spoil(&r);
    Status s = engine_->raise(source(), r, "system:x", nullptr);
    EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT) << c.field;
    EXPECT_EQ(s.message().rfind(c.field, 0), 0u) << s.message();
  }
  Counts c;
  ASSERT_TRUE(engine_->counts(admin_, &c));
  EXPECT_EQ(c.by_status["open"], 0);
}

TEST_F(AlertEngineTest, EveryActionChangesTheAlertAndIsAudited) {
  const auto a = raise(source(), raise_of("sub-1", "subscription:s1"));
  store::AlertRow out;
  ASSERT_TRUE(engine_->acknowledge(admin_, a.id, "looking", &out));
  EXPECT_EQ(out.status, "acknowledged");
  EXPECT_EQ(out.acknowledged_by, "alice");
  EXPECT_EQ(out.acknowledged_ms, kT0);

  ASSERT_TRUE(engine_->escalate_by_id(admin_, a.id, "customer called", &out));
  EXPECT_EQ(out.status, "escalated");  // an acknowledged alert escalated stays escalated
  EXPECT_EQ(out.escalation_level, 1);
  EXPECT_EQ(out.acknowledged_by, "alice");

  EXPECT_EQ(engine_->silence(admin_, a.id, kT0 - 1, "", &out).code(), OPK_ERR_INVALID_ARGUMENT);
  ASSERT_TRUE(engine_->silence(admin_, a.id, kT0 + kHour, "maintenance", &out));
  EXPECT_EQ(out.silenced_until_ms, kT0 + kHour);
  ASSERT_TRUE(engine_->unsilence(admin_, a.id, &out));
  EXPECT_EQ(out.silenced_until_ms, 0);

  Status no_reason = engine_->close(admin_, a.id, "", &out);
  EXPECT_EQ(no_reason.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(no_reason.message().rfind("reason:", 0), 0u);
  ASSERT_TRUE(engine_->close(admin_, a.id, "fixed by hand", &out));
  EXPECT_EQ(out.status, "closed");
  EXPECT_EQ(out.close_kind, "manual");
  EXPECT_EQ(out.closed_by, "alice");
  EXPECT_EQ(out.close_reason, "fixed by hand");
  EXPECT_EQ(engine_->acknowledge(admin_, a.id, "", &out).code(), OPK_ERR_CONFLICT);
  EXPECT_EQ(engine_->close(admin_, a.id, "again", &out).code(), OPK_ERR_CONFLICT);

  Raise custom;
  custom.severity = "critical";
  custom.title = "Datacenter visit";
  custom.scope = "tenant:t1";
  ASSERT_TRUE(engine_->create(admin_, custom, &out));
  EXPECT_TRUE(out.custom);
  EXPECT_EQ(out.source, "custom");
  EXPECT_EQ(out.related_type, "custom");
  EXPECT_FALSE(out.related_id.empty());

  Detail d;
  ASSERT_TRUE(engine_->get(admin_, a.id, &d));
  std::vector<std::string> kinds;
  for (const auto& e : d.history) kinds.push_back(e.kind);
  EXPECT_EQ(kinds, (std::vector<std::string>{"raised", "acknowledged", "escalated", "silenced", "silenced", "closed"}));

  const auto ack = audit_of("alerts.acknowledge");
  ASSERT_EQ(ack.size(), 2u);  // newest first: the refusal on the closed alert, then the success
  EXPECT_EQ(ack[1].outcome, "success");
  EXPECT_EQ(ack[1].actor, "alice");
  EXPECT_EQ(ack[1].reason, "looking");
  EXPECT_EQ(ack[1].target, "alert:" + std::to_string(a.id));
  EXPECT_EQ(ack[1].source, "10.0.0.1");
  EXPECT_EQ(ack[0].outcome.rfind("refused: ", 0), 0u) << ack[0].outcome;
  const auto closes = audit_of("alerts.close");
  ASSERT_EQ(closes.size(), 3u);
  EXPECT_EQ(closes[1].outcome, "success");
  EXPECT_EQ(closes[1].reason, "fixed by hand");
  EXPECT_EQ(closes[2].outcome.rfind("refused: reason:", 0), 0u);
  EXPECT_EQ(audit_of("alerts.silence").size(), 2u);
  EXPECT_EQ(audit_of("alerts.unsilence").size(), 1u);
  EXPECT_EQ(audit_of("alerts.escalate").size(), 1u);
  ASSERT_EQ(audit_of("alerts.create").size(), 1u);
  EXPECT_EQ(audit_of("alerts.create")[0].outcome, "success");
}

// The matrix: which (role, scope) sees an alert at which node.
TEST_F(AlertEngineTest, VisibilityHoldsForListGetCountsAndEveryAction) {
  const std::vector<std::string> nodes = {"platform",   "distributor:d1",  "partner:p1",
                                          "tenant:t1",  "subscription:s1", "distributor:d2",
                                          "partner:p2", "tenant:t2",       "subscription:s2"};
  std::map<std::string, int64_t> id_at;  // node -> alert id
  for (const auto& n : nodes) id_at[n] = raise(source(), raise_of("obj-" + n, n)).id;
  const int64_t platform_only = raise(source("secret", true), raise_of("obj-secret", "tenant:t1")).id;

  struct Who {
    Actor actor;
    std::set<std::string> sees;
  };
  const std::vector<Who> matrix = {
      {{"pa", "PlatformAdministrator", "platform", ""}, {nodes.begin(), nodes.end()}},
      {{"da", "DistributorAdministrator", "distributor:d1", ""},
       {"distributor:d1", "partner:p1", "tenant:t1", "subscription:s1"}},
      {{"pp", "PartnerAdministrator", "partner:p1", ""}, {"partner:p1", "tenant:t1", "subscription:s1"}},
      {{"ta", "TenantAdministrator", "tenant:t1", ""}, {"tenant:t1", "subscription:s1"}},
      {{"tu", "TenantUser", "tenant:t1", ""}, {"tenant:t1"}},
      {{"tu2", "TenantUser", "tenant:t2", ""}, {"tenant:t2"}},
      {{"da2", "DistributorAdministrator", "distributor:d2", ""},
       {"distributor:d2", "partner:p2", "tenant:t2", "subscription:s2"}},
      {{"odd", "Auditor", "partner:p2", ""}, {"partner:p2", "tenant:t2", "subscription:s2"}},
  };
  for (const auto& who : matrix) {
    SCOPED_TRACE(who.actor.role + " at " + who.actor.scope);
    const bool all = who.actor.role == "PlatformAdministrator";
    // list, paged through: exactly the expected set.
    std::set<int64_t> listed;
    ListRequest r;
    r.limit = 2;
    for (int page = 0; page < 20; ++page) {
      Page p;
      ASSERT_TRUE(engine_->list(who.actor, r, &p));
      for (const auto& a : p.alerts) listed.insert(a.id);
      if (p.next_cursor.empty()) break;
      r.cursor = p.next_cursor;
    }
    std::set<int64_t> expected;
    for (const auto& n : who.sees) expected.insert(id_at[n]);
    if (all) expected.insert(platform_only);
    EXPECT_EQ(listed, expected);
    Counts c;
    ASSERT_TRUE(engine_->counts(who.actor, &c));
    EXPECT_EQ(c.by_status["open"] + c.by_status["acknowledged"] + c.by_status["escalated"],
              static_cast<int64_t>(expected.size()));
    EXPECT_EQ(c.by_source.count("secret") > 0, all);
    // get and each action: NOT_FOUND outside the view.
    std::vector<int64_t> ids;
    for (const auto& [n, id] : id_at) ids.push_back(id);
    ids.push_back(platform_only);
    for (int64_t id : ids) {
      const bool visible = expected.count(id) > 0;
      Detail d;
      store::AlertRow out;
      const int want = visible ? OPK_OK : OPK_ERR_NOT_FOUND;
      EXPECT_EQ(engine_->get(who.actor, id, &d).code(), want) << id;
      EXPECT_EQ(engine_->silence(who.actor, id, kT0 + kHour, "", &out).code(), want) << id;
      EXPECT_EQ(engine_->unsilence(who.actor, id, &out).code(), want) << id;
      EXPECT_EQ(engine_->acknowledge(who.actor, id, "", &out).code(), want) << id;
      EXPECT_EQ(engine_->escalate_by_id(who.actor, id, "why", &out).code(), want) << id;
    }
  }
  // Close last (it is final): an invisible close is NOT_FOUND and leaves the alert open.
  store::AlertRow out;
  const Actor tu{"tu", "TenantUser", "tenant:t1", ""};
  EXPECT_EQ(engine_->close(tu, id_at["tenant:t2"], "not mine", &out).code(), OPK_ERR_NOT_FOUND);
  EXPECT_EQ(engine_->close(tu, platform_only, "not mine", &out).code(), OPK_ERR_NOT_FOUND);
  EXPECT_TRUE(engine_->close(tu, id_at["tenant:t1"], "mine", &out));
  Detail d;
  ASSERT_TRUE(engine_->get(admin_, id_at["tenant:t2"], &d));
  EXPECT_EQ(d.alert.status, "escalated");
  // A custom alert only where the creator sees.
  Raise custom;
  custom.severity = "info";
  custom.title = "note";
  custom.scope = "tenant:t2";
  Status s = engine_->create({"ta", "TenantAdministrator", "tenant:t1", ""}, custom, &out);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(s.message().rfind("scope:", 0), 0u);
  custom.scope = "partner:p1";  // in no subtree of a tenant administrator
  EXPECT_EQ(engine_->create({"ta", "TenantAdministrator", "tenant:t1", ""}, custom, &out).code(),
            OPK_ERR_INVALID_ARGUMENT);
  custom.scope = "subscription:s1";
  EXPECT_TRUE(engine_->create({"ta", "TenantAdministrator", "tenant:t1", ""}, custom, &out));
}

TEST_F(AlertEngineTest, ListFiltersSortsAndPagesWithACursor) {
  for (int i = 0; i < 7; ++i) {
    clock_.advance(1000);
    raise(source(), raise_of("sub-" + std::to_string(i), "subscription:s1", i % 3 == 0 ? "critical" : "warning",
                             i == 4 ? "Disk almost FULL" : "No usage"));
  }
  Page p;
  ListRequest r;
  r.severity = "critical";
  ASSERT_TRUE(engine_->list(admin_, r, &p));
  EXPECT_EQ(p.alerts.size(), 3u);
  r = {};
  r.q = "full";
  ASSERT_TRUE(engine_->list(admin_, r, &p));
  ASSERT_EQ(p.alerts.size(), 1u);
  EXPECT_EQ(p.alerts[0].related_id, "sub-4");
  r = {};
  r.sort = "first_seen";
  r.limit = 3;
  std::vector<std::string> order;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(engine_->list(admin_, r, &p));
    for (const auto& a : p.alerts) order.push_back(a.related_id);
    if (p.next_cursor.empty()) break;
    r.cursor = p.next_cursor;
  }
  EXPECT_EQ(order, (std::vector<std::string>{"sub-0", "sub-1", "sub-2", "sub-3", "sub-4", "sub-5", "sub-6"}));
  r = {};
  r.sort = "-severity";
  ASSERT_TRUE(engine_->list(admin_, r, &p));
  EXPECT_EQ(p.alerts.front().severity, "critical");
  EXPECT_EQ(p.alerts.back().severity, "warning");
  r = {};
  r.scope = "tenant:t2";
  ASSERT_TRUE(engine_->list(admin_, r, &p));
  EXPECT_TRUE(p.alerts.empty());
  // Outside the caller's view, a node answers as one that does not exist.
  const Actor ta{"ta", "TenantAdministrator", "tenant:t1", ""};
  const std::string outside = engine_->list(ta, r, &p).message();
  r.scope = "tenant:nobody";
  EXPECT_EQ(engine_->list(ta, r, &p).message(), "scope: no node 'tenant:nobody' within your view");
  EXPECT_EQ(outside, "scope: no node 'tenant:t2' within your view");
  r.scope = "partner:p1";  // above the caller: its own alerts
  ASSERT_TRUE(engine_->list(ta, r, &p));
  EXPECT_EQ(p.alerts.size(), 7u);
  r = {};
  r.sort = "sideways";
  EXPECT_EQ(engine_->list(admin_, r, &p).message().rfind("sort:", 0), 0u);
  r = {};
  r.status = "open,dormant";
  EXPECT_EQ(engine_->list(admin_, r, &p).message().rfind("status:", 0), 0u);
  r = {};
  r.cursor = "garbage";
  EXPECT_EQ(engine_->list(admin_, r, &p).message().rfind("cursor:", 0), 0u);
  r = {};
  r.limit = 501;
  EXPECT_EQ(engine_->list(admin_, r, &p).message().rfind("limit:", 0), 0u);
}

TEST_F(AlertEngineTest, AnAlertThatKeepsReopeningIsFlapping) {
  Options o;
  o.flap_threshold = 3;
  o.flap_window_ms = kHour;
  make_engine(o);
  std::vector<bool> flapping;
  for (int i = 0; i < 4; ++i) {
    flapping.push_back(raise(source(), raise_of("sub-1", "subscription:s1")).flapping);
    ASSERT_TRUE(engine_->clear(source(), "subscription", "sub-1", "system:x", "", nullptr));
    clock_.advance(60 * 1000);
  }
  // Opened, then reopened 1, 2, 3 times within the hour.
  EXPECT_EQ(flapping, (std::vector<bool>{false, false, false, true}));
  clock_.advance(2 * kHour);
  EXPECT_FALSE(raise(source(), raise_of("sub-1", "subscription:s1")).flapping);
}

TEST_F(AlertEngineTest, FullSweepClosesWhatItDidNotRaiseAfterCleanSweeps) {
  SourceInfo src = source();
  src.full_sweep = true;
  src.clean_sweeps = 2;
  const auto a = raise(src, raise_of("sub-1", "subscription:s1"));
  const auto b = raise(src, raise_of("sub-2", "subscription:s1"));
  const auto other = raise(source("other"), raise_of("sub-3", "subscription:s1"));
  int64_t closed = -1;
  ASSERT_TRUE(engine_->sweep(src, {b.id}, &closed));  // a: one clean sweep
  EXPECT_EQ(closed, 0);
  raise(src, raise_of("sub-1", "subscription:s1"));  // raised again: the count starts over
  ASSERT_TRUE(engine_->sweep(src, {b.id}, &closed));
  EXPECT_EQ(closed, 0);
  ASSERT_TRUE(engine_->sweep(src, {b.id}, &closed));
  EXPECT_EQ(closed, 1);
  Detail d;
  ASSERT_TRUE(engine_->get(admin_, a.id, &d));
  EXPECT_EQ(d.alert.status, "closed");
  EXPECT_EQ(d.alert.close_kind, "cleared");
  EXPECT_EQ(d.alert.closed_by, "system:plugin-missing-usage");
  ASSERT_TRUE(engine_->get(admin_, b.id, &d));
  EXPECT_EQ(d.alert.status, "open");
  ASSERT_TRUE(engine_->get(admin_, other.id, &d));
  EXPECT_EQ(d.alert.status, "open");  // another source's alerts are not this sweep's
}

TEST_F(AlertEngineTest, AnAlertNotRaisedAgainForExpireAfterClosesAsExpired) {
  Options o;
  o.expire_after_ms = 30 * 24 * kHour;
  make_engine(o);
  const auto stale = raise(source(), raise_of("sub-1", "subscription:s1"));
  const auto fresh = raise(source(), raise_of("sub-2", "subscription:s1"));
  clock_.advance(20 * 24 * kHour);
  raise(source(), raise_of("sub-2", "subscription:s1"));  // raised again: its last raise moves on
  int64_t n = -1;
  ASSERT_TRUE(engine_->expire(clock::now_ms(), &n));
  EXPECT_EQ(n, 0);
  clock_.advance(10 * 24 * kHour);  // stale: 30 days since its last raise
  ASSERT_TRUE(engine_->expire(clock::now_ms(), &n));
  EXPECT_EQ(n, 1);
  Detail d;
  ASSERT_TRUE(engine_->get(admin_, stale.id, &d));
  EXPECT_EQ(d.alert.status, "closed");
  EXPECT_EQ(d.alert.close_kind, "expired");
  EXPECT_EQ(d.alert.closed_by, "kernel");
  EXPECT_EQ(d.history.back().kind, "closed");
  ASSERT_TRUE(engine_->get(admin_, fresh.id, &d));
  EXPECT_EQ(d.alert.status, "open");
  bool audited = false;
  for (const auto& row : store_->audit_rows(100).value())
    audited = audited || (row.action == "alerts.expire" && row.target == "alert:" + std::to_string(stale.id));
  EXPECT_TRUE(audited);
  // Off: nothing expires, however old.
  o.expire_after_ms = 0;
  make_engine(o);
  clock_.advance(365 * 24 * kHour);
  ASSERT_TRUE(engine_->expire(clock::now_ms(), &n));
  EXPECT_EQ(n, 0);
}

TEST_F(AlertEngineTest, EscalationRulesFireOnceOnTimeAcrossARestart) {
  Options o;
  o.rules = {{"critical-4h", "*", "critical", 4 * kHour, "unacknowledged"}, {"any-1d", "*", "", 24 * kHour, "open"}};
  make_engine(o);
  const auto old = raise(source(), raise_of("sub-1", "subscription:s1", "critical"));
  const auto acked = raise(source(), raise_of("sub-2", "subscription:s1", "critical"));
  ASSERT_TRUE(engine_->acknowledge(admin_, acked.id, "", nullptr));
  clock_.advance(3 * kHour);
  const auto young = raise(source(), raise_of("sub-3", "subscription:s1", "critical"));
  clock_.advance(kHour);  // old: first seen 4h ago
  int64_t n = -1;
  ASSERT_TRUE(engine_->check_escalations(clock::now_ms(), &n));
  EXPECT_EQ(n, 1);
  Detail d;
  ASSERT_TRUE(engine_->get(admin_, old.id, &d));
  EXPECT_EQ(d.alert.status, "escalated");
  EXPECT_EQ(d.alert.escalation_level, 1);
  EXPECT_EQ(d.history.back().kind, "escalated");
  EXPECT_EQ(d.history.back().actor, "kernel");
  ASSERT_TRUE(engine_->get(admin_, acked.id, &d));
  EXPECT_EQ(d.alert.escalation_level, 0);  // acknowledged: not this rule's
  ASSERT_TRUE(engine_->get(admin_, young.id, &d));
  EXPECT_EQ(d.alert.escalation_level, 0);

  // A restart: a new engine on the same store does not escalate it twice.
  make_engine(o);
  ASSERT_TRUE(engine_->check_escalations(clock::now_ms(), &n));
  EXPECT_EQ(n, 0);
  clock_.advance(3 * kHour);
  ASSERT_TRUE(engine_->check_escalations(clock::now_ms(), &n));
  EXPECT_EQ(n, 1);  // young, now 4h old
  clock_.advance(20 * kHour);
  ASSERT_TRUE(engine_->check_escalations(clock::now_ms(), &n));
  EXPECT_EQ(n, 3);  // the one-day rule, once for each of the three
  ASSERT_TRUE(engine_->get(admin_, old.id, &d));
  EXPECT_EQ(d.alert.escalation_level, 2);
  ASSERT_TRUE(engine_->check_escalations(clock::now_ms(), &n));
  EXPECT_EQ(n, 0);
  Counts c;
  ASSERT_TRUE(engine_->counts(admin_, &c));
  EXPECT_EQ(c.escalated, 3);
  EXPECT_EQ(c.open_critical, 3);
}

// The alert's JSON is written by hand: it must stay valid JSON whatever
// the text holds, and mean what the row says.
TEST(AlertJsonTest, EveryTextIsEscapedAndBadUtf8IsReplaced) {
  store::AlertRow a;
  a.id = 7;
  a.source = "s";
  a.title = std::string("quote \" backslash \\ newline \n tab \t bell \x07 nul ") + std::string(1, '\0') + " end";
  a.message = "ok \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 bad \xff \xc3 overlong \xc0\xaf surrogate \xed\xa0\x80";
  a.related_id = "x";
  a.details_json = R"({"n": [1, 2], "s": "\u00e9"})";
  a.acknowledged_by = "user:ops";
  a.acknowledged_ms = 5;
  a.previous_id = 0;
  const nlohmann::json j = nlohmann::json::parse(to_json(a));
  EXPECT_EQ(j["id"], 7);
  EXPECT_EQ(j["title"],
            std::string("quote \" backslash \\ newline \n tab \t bell \x07 nul ") + std::string(1, '\0') + " end");
  const std::string bad = "\xef\xbf\xbd";
  EXPECT_EQ(j["message"], "ok \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 bad " + bad + " " + bad + " overlong " + bad +
                              bad + " surrogate " + bad + bad + bad);
  EXPECT_EQ(j["details"], nlohmann::json::parse(R"({"n": [1, 2], "s": "\u00e9"})"));
  EXPECT_EQ(j["acknowledged_by"], "user:ops");
  EXPECT_EQ(j["acknowledged_ms"], 5);
  EXPECT_TRUE(j["closed_ms"].is_null());
  EXPECT_TRUE(j["previous_id"].is_null());
  EXPECT_EQ(j["platform_only"], false);
  a.details_json = "not json";
  EXPECT_EQ(nlohmann::json::parse(to_json(a))["details"], nlohmann::json::object());
}

}  // namespace
}  // namespace opk::alerts
