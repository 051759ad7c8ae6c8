// A fixture plugin for the migration-status tests: "migrating", whose
// migrations are chosen by its settings, so one test can play an older
// build, a newer build whose migration fails, and the fixed build:
//   versions  how many of its four migrations it declares (default 4)
//   fail      "true": version 3 changes its table and rows, then fails
// Version 1 makes p_migrating_items, 2 puts two rows in it, 3 adds a
// column and renames the rows, 4 adds an index.
#include <opskernel/opk.hpp>

#include <string>
#include <vector>

namespace {

class MigratingPlugin : public opk::Plugin {
 public:
  explicit MigratingPlugin(opk::Host host) : Plugin(host) {}

  opk::Status init() override {
    opk::Settings in = host().settings();
    const int64_t versions = in.integer("versions", 4, 0, 4);
    const bool fail = in.text("fail", "false") == "true";
    if (opk::Status s = in.status(); !s) return s;
    std::string widen =
        "ALTER TABLE p_migrating_items ADD COLUMN colour TEXT; UPDATE p_migrating_items SET name = 'renamed'";
    if (fail) widen += "; INSERT INTO p_migrating_missing (id) VALUES (1)";
    sql_ = {"CREATE TABLE p_migrating_items (id BIGINT PRIMARY KEY, name TEXT NOT NULL)",
            "INSERT INTO p_migrating_items (id, name) VALUES (1, 'one'); "
            "INSERT INTO p_migrating_items (id, name) VALUES (2, 'two')",
            widen, "CREATE INDEX p_migrating_items_colour ON p_migrating_items (colour)"};
    const char* names[] = {"items", "two rows", "colour", "colour index"};
    std::vector<opk_store_migration> ms;
    for (int64_t v = 1; v <= versions; ++v) ms.push_back({static_cast<int32_t>(v), names[v - 1], sql_[v - 1].c_str()});
    return opk::Store(host()).migrate(ms);
  }

 private:
  std::vector<std::string> sql_;
};

opk::Manifest describe() {
  return opk::Manifest("migrating", "Migrating", "1.0.0", "Opskernel tests",
                       "A plugin whose migrations the migration-status tests choose");
}

}  // namespace

OPK_PLUGIN(MigratingPlugin, describe);
