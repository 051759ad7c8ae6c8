// The ABI header compiles as C++20 too, and its text is pinned by a hash:
// editing opk_abi.h fails this test until the pin is updated on purpose
// (and docs/abi.md says what changed and why it is additive).
#include <gtest/gtest.h>
#include <opskernel/opk.hpp>

#include <fstream>
#include <sstream>

extern "C" int opk_abi_c11_ok(void);

namespace {

// FNV-1a 64 over the header bytes: no crypto needed to detect an edit.
uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

TEST(AbiLayout, CompilesAsC11AndCxx20WithTheSameVersion) {
  EXPECT_EQ(opk_abi_c11_ok(), OPK_ABI_MAJOR * 100 + OPK_ABI_MINOR);
  static_assert(sizeof(opk_plugin_entry) == 64);
  static_assert(sizeof(opk_job_type) == 144);
  static_assert(sizeof(opk_run_context) == 168);
  static_assert(sizeof(opk_notification_channel) == 56);
  static_assert(sizeof(opk_delivery_result) == 544);
  static_assert(sizeof(opk_delivery_result::detail) == 512);
  static_assert(sizeof(opk_run_slot) == 40);  // (1.8)
  static_assert(offsetof(opk_run_slot, slot_ms) == 32);
  static_assert(sizeof(opk_run_gates_v1) == 24);
}

TEST(AbiLayout, StatusCodesKeepTheirNumbers) {
  EXPECT_EQ(OPK_OK, 0);
  EXPECT_EQ(OPK_ERR_FAILED, 1);
  EXPECT_EQ(OPK_ERR_CANCELLED, 6);
  EXPECT_EQ(OPK_ERR_CONFLICT, 8);
  EXPECT_EQ(OPK_ERR_BUFFER_TOO_SMALL, 13);
}

TEST(AbiLayout, HasMemberGatesOnStructSize) {
  // A 1.0 reader given a struct cut short before `cancel` must not see it.
  const size_t cut = offsetof(opk_job_type, cancel);
  EXPECT_FALSE(OPK_HAS_MEMBER(opk_job_type, cut, cancel));
  EXPECT_TRUE(OPK_HAS_MEMBER(opk_job_type, sizeof(opk_job_type), cancel));
}

TEST(AbiLayout, HeaderTextIsPinned) {
  std::ifstream in(OPK_ABI_HEADER, std::ios::binary);
  ASSERT_TRUE(in) << OPK_ABI_HEADER;
  std::stringstream ss;
  ss << in.rdbuf();
  const uint64_t pinned = 0xbd9ab4dc54ca0f46ull;  // updated deliberately on every ABI edit
  EXPECT_EQ(fnv1a(ss.str()), pinned) << "opk_abi.h changed: if the change is additive (see docs/abi.md), update the "
                                        "pin in tests/sdk/abi_layout_test.cpp to 0x"
                                     << std::hex << fnv1a(ss.str()) << "ull";
}

}  // namespace
