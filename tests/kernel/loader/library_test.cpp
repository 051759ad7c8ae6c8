// Each refusal reason of the loader, with libraries built to be refused, and
// ABI negotiation both ways.
#include "loader/library.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "support/test_util.h"

namespace opk::loader {
namespace {

using test::fixture;

Status open(const std::string& path, std::unique_ptr<Library>* lib, uint32_t minor = OPK_ABI_MINOR) {
  return Library::open(path, lib, OPK_ABI_MAJOR, minor);
}

void expect_refused(const std::string& name, opk_status code, const std::string& words) {
  std::unique_ptr<Library> lib;
  Status s = open(fixture(name), &lib);
  ASSERT_FALSE(s) << name << " was accepted";
  EXPECT_EQ(s.code(), code) << name << ": " << s.message();
  EXPECT_NE(s.message().find(words), std::string::npos) << name << ": " << s.message();
  EXPECT_EQ(lib, nullptr);
}

TEST(Library, AcceptsAPlainCPlugin) {
  std::unique_ptr<Library> lib;
  Status s = open(fixture("good_c"), &lib);
  ASSERT_TRUE(s) << s.message();
  const auto& m = lib->manifest();
  EXPECT_EQ(m.id, "good-c");
  EXPECT_EQ(m.version, "1.2.3");
  ASSERT_EQ(m.job_types.size(), 1u);
  EXPECT_TRUE(m.job_types[0].manual_run());
  EXPECT_TRUE(m.job_types[0].cancellable());
  EXPECT_EQ(m.job_types[0].actions.at(0).id, "only");
  EXPECT_EQ(m.job_types[0].worker_pool, "default");
}

TEST(Library, RefusesAWrongMajorInTheEntry) {
  expect_refused("wrong_major_field", OPK_ERR_INCOMPATIBLE, "built for plugin ABI 2.");
}

TEST(Library, NamesTheMajorOfAnEntryForAnotherAbi) {
  expect_refused("v2_symbol", OPK_ERR_INCOMPATIBLE, "opk_plugin_entry_v2");
}

TEST(Library, RefusesALibraryWithoutEntry) {
  expect_refused("no_entry", OPK_ERR_NOT_FOUND, "no entry symbol");
}

TEST(Library, RefusesAFileThatIsNotALibrary) {
  test::TempDir d;
  auto p = d.path() / "junk.so";
  test::write_file(p, "this is not an ELF file");
  std::unique_ptr<Library> lib;
  Status s = open(p.string(), &lib);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("cannot load"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("junk.so"), std::string::npos) << s.message();
}

TEST(Library, RefusesUnresolvedSymbolsAtLoadNotAtRun) {
  expect_refused("undefined_symbol", OPK_ERR_FAILED, "opk_test_symbol_that_does_not_exist");
}

TEST(Library, RefusesAnEntryTooSmallForAbi10) {
  expect_refused("small_entry", OPK_ERR_INCOMPATIBLE, "smaller than the ABI 1.0 size");
}

TEST(Library, NewerMinorLoadsWhenItNeedsNothingNewer) {
  std::unique_ptr<Library> lib;
  Status s = open(fixture("newer_minor_ok"), &lib);
  ASSERT_TRUE(s) << s.message();
  EXPECT_EQ(lib->manifest().abi_minor, OPK_ABI_MINOR + 1u);
}

TEST(Library, NewerMinorIsRefusedWhenItNeedsANewerKernel) {
  expect_refused("newer_minor_requires", OPK_ERR_INCOMPATIBLE, "needs a kernel of at least ABI");
}

TEST(Library, OlderMinorLoadsInANewerKernel) {
  // The same plugin, seen by a kernel three minors ahead.
  std::unique_ptr<Library> lib;
  Status s = open(fixture("good_c"), &lib, OPK_ABI_MINOR + 3);
  ASSERT_TRUE(s) << s.message();
}

TEST(Library, RefusesCancelCapabilityWithoutHook) {
  expect_refused("cancel_no_hook", OPK_ERR_INVALID_ARGUMENT, "declares the cancel capability but has no cancel hook");
}

TEST(Library, RefusesCancelHookWithoutCapability) {
  expect_refused("hook_no_cancel_cap", OPK_ERR_INVALID_ARGUMENT, "does not declare the cancel capability");
}

TEST(Library, RefusesAnInvalidPluginId) {
  expect_refused("bad_id", OPK_ERR_INVALID_ARGUMENT, "id 'Bad Id' is invalid");
}

TEST(Library, RefusesAnInvalidActionId) {
  expect_refused("bad_action_id", OPK_ERR_INVALID_ARGUMENT, "action 0: id 'two words' is invalid");
}

TEST(Library, RefusesAParameterSchemaThatIsNotJson) {
  expect_refused("bad_schema", OPK_ERR_INVALID_ARGUMENT, "params_schema_json: is not valid JSON");
}

TEST(Library, RefusesAParameterSchemaThatIsJsonButNotAJsonSchema) {
  // Both aborted the kernel in the validator at the first run request.
  expect_refused("schema_bad_type", OPK_ERR_INVALID_ARGUMENT,
                 "job type 'c-job': params_schema_json: not a usable JSON Schema");
  expect_refused("schema_bad_type", OPK_ERR_INVALID_ARGUMENT, "integr");
  expect_refused("schema_bad_minimum", OPK_ERR_INVALID_ARGUMENT,
                 "job type 'c-job': params_schema_json: not a usable JSON Schema");
}

// A copy of a good library cut at `size` bytes, as a copy in progress
// during a deployment leaves it.
std::filesystem::path truncated_copy(const test::TempDir& d, uint64_t size) {
  auto p = d.path() / ("cut_" + std::to_string(size) + ".so");
  std::filesystem::copy_file(fixture("good_c"), p);
  std::filesystem::resize_file(p, size);
  return p;
}

TEST(Library, RefusesATruncatedLibraryBeforeMappingIt) {
  test::TempDir d;
  const uint64_t full = std::filesystem::file_size(fixture("good_c"));
  // Every cut point: the ELF header, the program headers, the mapped
  // segments, the sections, the section headers at the end.
  for (uint64_t size : {uint64_t{10}, uint64_t{40}, uint64_t{100}, full / 8, full / 4, full / 2, full * 3 / 4,
                        full - 700, full - 64, full - 1}) {
    std::unique_ptr<Library> lib;
    Status s = open(truncated_copy(d, size).string(), &lib);
    ASSERT_FALSE(s) << size;
    EXPECT_EQ(lib, nullptr);
    EXPECT_NE(s.message().find("cannot load"), std::string::npos) << size << ": " << s.message();
    if (size >= 64) {
      EXPECT_NE(s.message().find("truncated or still being copied"), std::string::npos) << size << ": " << s.message();
    }
  }
}

TEST(Library, RefusesWhatIsNotASharedLibraryWithTheReason) {
  test::TempDir d;
  std::string elf =
      "\x7f"
      "ELF";
  elf.resize(64, '\0');
  test::write_file(d.path() / "header_only.so", elf);
  std::unique_ptr<Library> lib;
  Status s = open((d.path() / "header_only.so").string(), &lib);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("header_only.so"), std::string::npos) << s.message();
  // The kernel's own executable: a complete ELF file that dlopen refuses,
  // in dlerror's words without Boost.DLL's wrapping.
  s = open(OPK_KERNEL_BINARY, &lib);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("cannot dynamically load position-independent executable"), std::string::npos)
      << s.message();
  EXPECT_EQ(s.message().find("Bad file descriptor"), std::string::npos) << s.message();
}

TEST(Library, DlopenRefusalsCarryDlerrorsWordsAlone) {
  std::unique_ptr<Library> lib;
  Status s = open(fixture("undefined_symbol"), &lib);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("undefined symbol"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("Bad file descriptor"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("boost::"), std::string::npos) << s.message();
}

TEST(Manifest, ChecksEveryItemBeforeAccepting) {
  // A hand-built manifest: the second job type is broken, so nothing is kept.
  static const opk_job_type good = {
      sizeof(opk_job_type),
      "a",
      "A",
      nullptr,
      nullptr,
      0,
      nullptr,
      nullptr,
      0,
      0,
      0,
      nullptr,
      nullptr,
      0,
      nullptr,
      0,
      [](opk_plugin*, const opk_job_type*, const opk_run_context*) -> opk_status { return OPK_OK; },
      nullptr};
  opk_job_type bad = good;
  bad.id = "b";
  bad.run = nullptr;
  const opk_job_type* jobs[] = {&good, &bad};
  opk_manifest m{};
  m.struct_size = sizeof m;
  m.id = "x";
  m.name = "X";
  m.version = "1.0.0";
  m.vendor = "V";
  m.job_types = jobs;
  m.job_type_count = 2;
  Manifest out;
  out.id = "untouched";
  Status s = read_manifest(&m, false, &out);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("job type 'b': run is NULL"), std::string::npos) << s.message();
  EXPECT_EQ(out.id, "untouched");

  jobs[1] = &good;  // the same id twice
  s = read_manifest(&m, false, &out);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("declared twice"), std::string::npos) << s.message();
}

TEST(Manifest, ReadsAShorterOlderStructZeroExtended) {
  // A job type from a writer that knew only the fields up to `cancel`...
  // which is all of 1.0; cut it below that and it must be refused instead.
  opk_job_type j{};
  j.struct_size = offsetof(opk_job_type, run);
  j.id = "short";
  j.title = "Short";
  const opk_job_type* jobs[] = {&j};
  opk_manifest m{};
  m.struct_size = sizeof m;
  m.id = "x";
  m.name = "X";
  m.version = "1.0.0";
  m.vendor = "V";
  m.job_types = jobs;
  m.job_type_count = 1;
  Manifest out;
  Status s = read_manifest(&m, false, &out);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("smaller than the ABI 1.0 size"), std::string::npos) << s.message();
}

TEST(Manifest, SemverAndVendorAreRequired) {
  opk_manifest m{};
  m.struct_size = sizeof m;
  m.id = "x";
  m.name = "X";
  m.version = "1.0";
  m.vendor = "V";
  Manifest out;
  Status s = read_manifest(&m, false, &out);
  EXPECT_NE(s.message().find("MAJOR.MINOR.PATCH"), std::string::npos) << s.message();
  m.version = "1.0.0-rc.1";
  m.vendor = "";
  s = read_manifest(&m, false, &out);
  EXPECT_NE(s.message().find("vendor is missing"), std::string::npos) << s.message();
}

TEST(Manifest, KernelExtensionIdsAreReservedAndRequirementsUnique) {
  const char* provides[] = {"opk.store/1"};
  opk_manifest m{};
  m.struct_size = sizeof m;
  m.id = "x";
  m.name = "X";
  m.version = "1.0.0";
  m.vendor = "V";
  m.provides = provides;
  m.provides_count = 1;
  Manifest out;
  Status s = read_manifest(&m, true, &out);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("reserved for the kernel"), std::string::npos) << s.message();
  m.provides_count = 0;
  const opk_requirement reqs[] = {{"a.b/1", 0}, {"a.b/1", 1}};
  m.requirements = reqs;
  m.requirement_count = 2;
  s = read_manifest(&m, false, &out);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("listed twice"), std::string::npos) << s.message();
}

TEST(Manifest, ExtensionIdsAndSchedules) {
  EXPECT_TRUE(valid_extension_id("opk.http-routes/1"));
  EXPECT_TRUE(valid_extension_id("com.example.thing/12"));
  EXPECT_FALSE(valid_extension_id("opk.http-routes"));
  EXPECT_FALSE(valid_extension_id("Opk/1"));
  EXPECT_TRUE(plausible_schedule("@daily"));
  EXPECT_TRUE(plausible_schedule("*/5 0-6 * JAN,FEB mon-fri"));
  EXPECT_FALSE(plausible_schedule("* * *"));
  EXPECT_FALSE(plausible_schedule("@sometimes"));
}

}  // namespace
}  // namespace opk::loader
