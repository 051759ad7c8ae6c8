#include "config/config.h"

#include <gtest/gtest.h>

#include "support/test_util.h"

namespace opk::config {
namespace {

using test::TempDir;
using test::write_file;

Status load_text(const TempDir& d, const std::string& text, Config* c, std::map<std::string, std::string> env = {},
                 std::map<std::string, std::string> overrides = {}) {
  auto f = d.path() / "k.conf";
  write_file(f, text);
  return load({f.string(), std::move(env), std::move(overrides)}, c);
}

TEST(Config, TheShippedDefaultFileIsValid) {
  Config c;
  Status s = load({std::string(OPK_SOURCE_DIR) + "/config/opskernel.conf", {}, {}}, &c);
  ASSERT_TRUE(s) << s.message();
  EXPECT_EQ(c.plugins_dir, "/usr/lib/opskernel/plugins");
  EXPECT_EQ(c.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.log.level, "info");
  EXPECT_EQ(c.log.file, "/var/lib/opskernel/log/opskernel.log");  // relative -> under data_dir
  EXPECT_EQ(c.plugins.at("hello").at("greeting"), "hello");
}

TEST(Config, EveryDocumentedKeyIsInTheShippedFile) {
  const std::string text = test::read_file(std::string(OPK_SOURCE_DIR) + "/config/opskernel.conf");
  for (const auto& [key, help] : keys()) {
    const std::string name = key.substr(key.find('.') + 1);
    EXPECT_NE(text.find(name + " ="), std::string::npos) << key << " is not documented in config/opskernel.conf";
  }
}

TEST(Config, UnknownKeyIsRejectedNamingIt) {
  TempDir d;
  Config c;
  Status s = load_text(d, "[kernel]\nplugin_dir = /x\n", &c);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("kernel.plugin_dir"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("unknown key"), std::string::npos) << s.message();
}

TEST(Config, BadValuesNameTheKeyAndTheReason) {
  TempDir d;
  struct Case {
    std::string text, key, why;
  } cases[] = {
      {"[log]\nlevel = verbose\n", "log.level", "not one of"},
      {"[log]\nmax_files = 0\n", "log.max_files", "out of range"},
      {"[log]\nmax_size_mb = ten\n", "log.max_size_mb", "not a whole number"},
      {"[log]\nconsole = maybe\n", "log.console", "not a boolean"},
      {"[kernel]\nlisten = 8080\n", "kernel.listen", "HOST:PORT"},
      {"[kernel]\nlisten = 127.0.0.1:70000\n", "kernel.listen (port)", "out of range"},
      {"[kernel]\nplugins_dir =\n", "kernel.plugins_dir", "must not be empty"},
      {"[plugins]\ndisabled = ok, Not Valid\n", "plugins.disabled", "not a valid plugin id"},
      {"[kernel]\nlisten = a:1\nlisten = b:2\n", "kernel.listen", "more than once"},
      {"[plugin.BAD]\nx = 1\n", "plugin.BAD.x", "not a valid plugin id"},
      {"[permissions]\ntenant_user = jobs.read, Runs Start\n", "permissions.tenant_user", "not a permission name"},
      {"[identity]\ntoken_ttl_days = -1\n", "identity.token_ttl_days", "not a whole number"},
  };
  for (const auto& c : cases) {
    Config cfg;
    Status s = load_text(d, c.text, &cfg);
    ASSERT_FALSE(s) << c.text;
    EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
    EXPECT_NE(s.message().find(c.key + ":"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find(c.why), std::string::npos) << s.message();
  }
}

TEST(Config, MalformedFileIsRejected) {
  TempDir d;
  Config c;
  Status s = load_text(d, "[kernel\nlisten = x\n", &c);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("k.conf"), std::string::npos) << s.message();
}

TEST(Config, MissingFileIsRejected) {
  Config c;
  Status s = load({"/nonexistent/opskernel.conf", {}, {}}, &c);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("cannot open"), std::string::npos);
}

TEST(Config, PrecedenceIsFlagThenEnvironmentThenFile) {
  TempDir d;
  Config c;
  Status s =
      load_text(d, "[log]\nlevel = error\n[kernel]\nlisten = 127.0.0.1:1000\ndata_dir = /file\n", &c,
                {{"OPSKERNEL_LOG_LEVEL", "debug"}, {"OPSKERNEL_KERNEL_LISTEN", "127.0.0.1:2000"}, {"HOME", "/x"}},
                {{"kernel.listen", "127.0.0.1:3000"}});
  ASSERT_TRUE(s) << s.message();
  EXPECT_EQ(c.log.level, "debug");        // environment beats file
  EXPECT_EQ(c.listen, "127.0.0.1:3000");  // flag beats environment
  EXPECT_EQ(c.data_dir, "/file");         // file beats default
}

TEST(Config, UnknownEnvironmentVariableIsRejected) {
  Config c;
  Status s = load({"", {{"OPSKERNEL_LOG_LEVLE", "debug"}}, {}}, &c);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("OPSKERNEL_LOG_LEVLE"), std::string::npos) << s.message();
}

TEST(Config, BadEnvironmentValueNamesTheVariable) {
  Config c;
  Status s = load({"", {{"OPSKERNEL_LOG_LEVEL", "loud"}}, {}}, &c);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("OPSKERNEL_LOG_LEVEL"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("log.level"), std::string::npos) << s.message();
}

TEST(Config, PluginSectionsReachTheirPlugin) {
  TempDir d;
  Config c;
  ASSERT_TRUE(load_text(d, "[plugin.com.example.x]\ntoken = abc\n[plugin.hello]\ngreeting = hej\n", &c));
  EXPECT_EQ(c.plugins.at("com.example.x").at("token"), "abc");
  EXPECT_EQ(c.plugins.at("hello").at("greeting"), "hej");
}

TEST(Config, PermissionsAreSetPerRole) {
  TempDir d;
  Config c;
  ASSERT_TRUE(load_text(d, "[permissions]\ntenant_administrator = jobs.read, runs.start,,\n", &c));
  ASSERT_EQ(c.permissions.count("TenantAdministrator"), 1u);
  EXPECT_EQ(c.permissions.at("TenantAdministrator"), (std::set<std::string>{"jobs.read", "runs.start"}));
  EXPECT_EQ(c.permissions.count("TenantUser"), 0u);  // not set: the default applies
}

TEST(Config, ValidIds) {
  EXPECT_TRUE(valid_id("hello"));
  EXPECT_TRUE(valid_id("com.example.vendor-source_2"));
  EXPECT_FALSE(valid_id(""));
  EXPECT_FALSE(valid_id("Hello"));
  EXPECT_FALSE(valid_id("-x"));
  EXPECT_FALSE(valid_id("a b"));
  EXPECT_FALSE(valid_id(std::string(65, 'a')));
}

TEST(Config, AlertSettingsAndEscalationRules) {
  TempDir d;
  Config c;
  ASSERT_TRUE(load_text(d,
                        "[alerts]\nflap_threshold = 5\nflap_window = 15m\n"
                        "[alert_escalation.crit]\nseverity = critical\nafter = 4h\nwhen = unacknowledged\n"
                        "[alert_escalation.usage]\nsource = missing-usage\nafter = 2d\n",
                        &c));
  EXPECT_EQ(c.alerts_flap_threshold, 5u);
  EXPECT_EQ(c.alerts_flap_window_ms, 15 * 60 * 1000);
  EXPECT_EQ(c.alerts_expire_after_ms, 30LL * 24 * 3600 * 1000);  // the default
  Config off, week;
  ASSERT_TRUE(load_text(d, "[alerts]\nexpire_after = 0\n", &off));
  EXPECT_EQ(off.alerts_expire_after_ms, 0);
  ASSERT_TRUE(load_text(d, "[alerts]\nexpire_after = 7d\n", &week));
  EXPECT_EQ(week.alerts_expire_after_ms, 7LL * 24 * 3600 * 1000);
  ASSERT_EQ(c.alert_escalations.size(), 2u);
  EXPECT_EQ(c.alert_escalations[0].name, "crit");
  EXPECT_EQ(c.alert_escalations[0].source, "*");
  EXPECT_EQ(c.alert_escalations[0].severity, "critical");
  EXPECT_EQ(c.alert_escalations[0].after_ms, 4 * 3600 * 1000);
  EXPECT_EQ(c.alert_escalations[0].when, "unacknowledged");
  EXPECT_EQ(c.alert_escalations[1].source, "missing-usage");
  EXPECT_EQ(c.alert_escalations[1].after_ms, 2 * 86400 * 1000);
  EXPECT_EQ(c.alert_escalations[1].when, "open");

  struct Case {
    std::string text, key, why;
  } cases[] = {
      {"[alerts]\nflap_threshold = 0\n", "alerts.flap_threshold", "out of range"},
      {"[alerts]\nflap_window = soon\n", "alerts.flap_window", "not a duration"},
      {"[alerts]\nexpire_after = 10s\n", "alerts.expire_after", "at least 1m"},
      {"[alerts]\nexpire_after = never\n", "alerts.expire_after", "not 0 (never) or a duration"},
      {"[alert_escalation.x]\nafter = 4 hours\n", "alert_escalation.x.after", "not a duration"},
      {"[alert_escalation.x]\nafter = 4h\nwhen = later\n", "alert_escalation.x.when", "not open or unacknowledged"},
      {"[alert_escalation.x]\nafter = 4h\nseverity = high\n", "alert_escalation.x.severity", "not info"},
      {"[alert_escalation.x]\nafter = 4h\ncolour = red\n", "alert_escalation.x.colour", "unknown key"},
      {"[alert_escalation.x]\nseverity = critical\n", "alert_escalation.x.after", "is required"},
  };
  for (const auto& k : cases) {
    Config cfg;
    Status s = load_text(d, k.text, &cfg);
    ASSERT_FALSE(s) << k.text;
    EXPECT_NE(s.message().find(k.key + ":"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find(k.why), std::string::npos) << s.message();
  }
}

TEST(Config, EventLogSettings) {
  TempDir d;
  Config c, def;
  ASSERT_TRUE(load_text(d, "", &def));
  EXPECT_EQ(def.events_retention_ms, 7LL * 24 * 3600 * 1000);
  EXPECT_EQ(def.events_console_url, "");
  ASSERT_TRUE(load_text(d, "[events]\nretention = 30d\nconsole_url = https://ops.example.com/\n", &c));
  EXPECT_EQ(c.events_retention_ms, 30LL * 24 * 3600 * 1000);
  EXPECT_EQ(c.events_console_url, "https://ops.example.com");  // without the trailing slash
  struct Case {
    std::string text, key, why;
  } cases[] = {
      {"[events]\nretention = 10m\n", "events.retention", "at least 1h"},
      {"[events]\nretention = a week\n", "events.retention", "not a duration"},
      {"[events]\nconsole_url = ops.example.com\n", "events.console_url", "not an http:// or https:// URL"},
      {"[events]\nconsole_url = https://ops.example.com/a b\n", "events.console_url", "blanks"},
  };
  for (const auto& k : cases) {
    Config cfg;
    Status s = load_text(d, k.text, &cfg);
    ASSERT_FALSE(s) << k.text;
    EXPECT_NE(s.message().find(k.key + ":"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find(k.why), std::string::npos) << s.message();
  }
}

TEST(Config, PostgresqlStoreSettings) {
  TempDir d;
  Config c;
  ASSERT_TRUE(load_text(d,
                        "[store]\nbackend = postgresql\nconninfo = host=db.example.com dbname=ops\nport = 6432\n"
                        "user = kernel\nsslmode = verify-full\npool_size = 16\npassword_env = OPS_DB_PASSWORD\n"
                        "listen_conninfo = host=db-primary.example.com port=5432\nprepared_statements = false\n",
                        &c));
  EXPECT_EQ(c.store_backend, "postgresql");
  EXPECT_EQ(c.pg_conninfo, "host=db.example.com dbname=ops");
  EXPECT_EQ(c.pg_port, "6432");
  EXPECT_EQ(c.pg_user, "kernel");
  EXPECT_EQ(c.pg_sslmode, "verify-full");
  EXPECT_EQ(c.pg_pool_size, 16u);
  EXPECT_EQ(c.pg_password_env, "OPS_DB_PASSWORD");
  EXPECT_EQ(c.pg_listen_conninfo, "host=db-primary.example.com port=5432");
  EXPECT_FALSE(c.pg_prepared_statements);
  EXPECT_EQ(load_text(d, "", &c).code(), OPK_OK);
  EXPECT_EQ(c.store_backend, "sqlite");  // the default
  EXPECT_TRUE(c.pg_prepared_statements);
  for (const auto& [text, says] : std::vector<std::pair<std::string, std::string>>{
           {"[store]\nbackend = mysql\n", "store.backend: 'mysql' is not sqlite or postgresql"},
           {"[store]\nconninfo = postgresql://u@h/db\n", "store.conninfo: a URI is not taken"},
           {"[store]\nconninfo = host=h password=secret\n", "store.conninfo: holds a password"},
           {"[store]\nlisten_conninfo = postgres://h/db\n", "store.listen_conninfo: a URI is not taken"},
           {"[store]\nlisten_conninfo = port=5432 password=secret\n", "store.listen_conninfo: holds a password"},
           {"[store]\nsslmode = sometimes\n", "store.sslmode: 'sometimes' is not disable"},
           {"[store]\npool_size = 0\n", "store.pool_size: '0' is out of range 1..256"},
           {"[store]\nprepared_statements = sometimes\n", "store.prepared_statements: "},
           {"[store]\nport = 70000\n", "store.port: '70000' is out of range 1..65535"},
           {"[store]\npassword_env = A-B\n", "store.password_env: 'A-B' is not an environment variable's name"}}) {
    Status s = load_text(d, text, &c);
    EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT) << text;
    EXPECT_NE(s.message().find(says), std::string::npos) << s.message();
    // A refused password never appears in the message.
    EXPECT_EQ(s.message().find("secret"), std::string::npos) << s.message();
  }
}

}  // namespace
}  // namespace opk::config
