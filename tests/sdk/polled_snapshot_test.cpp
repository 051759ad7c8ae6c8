// opk::PolledSnapshot: loaded once, reloaded only when its change counter
// moved (or when forced), a failed read or load keeps the snapshot it had,
// a thread's view follows a swap, and the poller sees a counter moved
// behind its back and calls the plugin's housekeeping.
#include <gtest/gtest.h>
#include <opskernel/polled_snapshot.hpp>

#include <atomic>
#include <chrono>
#include <new>
#include <string>
#include <thread>

namespace {

struct Rows {
  std::string text;
};

// A table and its change counter as the source reads them.
struct Table {
  std::atomic<int64_t> counter{0};
  std::atomic<int> loads{0};
  std::atomic<bool> counter_fails{false}, load_fails{false};
  std::mutex mu;
  std::string text = "a";

  opk::PolledSnapshot<Rows>::Source source() {
    return {.read_counter =
                [this](int64_t* c) {
                  if (counter_fails) return opk::Status(OPK_ERR_UNAVAILABLE, "the store is down");
                  *c = counter.load();
                  return opk::Status::ok();
                },
            .load =
                [this](Rows* out) {
                  if (load_fails) return opk::Status(OPK_ERR_UNAVAILABLE, "the table cannot be read");
                  ++loads;
                  std::lock_guard lock(mu);
                  out->text = text;
                  return opk::Status::ok();
                }};
  }
  void change(const std::string& t) {
    {
      std::lock_guard lock(mu);
      text = t;
    }
    ++counter;
  }
};

// A snapshot made where a destroyed one was (a plugin loaded again) is not
// taken for it by a thread that looked at the old one: it is empty until
// its first load.
TEST(PolledSnapshot, AThreadsViewIsNotTakenForAnInstanceMadeAtTheSameAddress) {
  Table table;
  alignas(opk::PolledSnapshot<Rows>) unsigned char storage[sizeof(opk::PolledSnapshot<Rows>)];
  auto* first = new (storage) opk::PolledSnapshot<Rows>();
  first->set_source(table.source());
  ASSERT_TRUE(first->refresh(true));
  EXPECT_EQ(first->thread_view().text, "a");
  first->~PolledSnapshot();
  auto* second = new (storage) opk::PolledSnapshot<Rows>();
  ASSERT_EQ(static_cast<void*>(second), static_cast<void*>(first));
  EXPECT_EQ(second->thread_view().text, "") << "the destroyed instance's snapshot, read through the new one";
  second->~PolledSnapshot();
}

TEST(PolledSnapshot, ReloadsOnlyWhenTheCounterMoves) {
  Table table;
  opk::PolledSnapshot<Rows> snap;
  EXPECT_EQ(snap.current()->text, "") << "empty before the first load";
  EXPECT_FALSE(snap.refresh(false)) << "no source yet";
  snap.set_source(table.source());
  ASSERT_TRUE(snap.refresh(true));
  EXPECT_EQ(snap.current()->text, "a");
  EXPECT_EQ(snap.counter(), 0);
  const Rows& before = snap.thread_view();
  EXPECT_EQ(before.text, "a");

  ASSERT_TRUE(snap.refresh(false));
  EXPECT_EQ(table.loads, 1) << "the counter did not move";
  ASSERT_TRUE(snap.refresh(true));
  EXPECT_EQ(table.loads, 2) << "forced";

  table.change("b");
  ASSERT_TRUE(snap.refresh(false));
  EXPECT_EQ(table.loads, 3);
  EXPECT_EQ(snap.counter(), 1);
  EXPECT_EQ(snap.thread_view().text, "b") << "the thread's view follows the swap";

  // A failure keeps what was loaded, and the next refresh loads.
  table.change("c");
  table.counter_fails = true;
  const opk::Status down = snap.refresh(false);
  EXPECT_FALSE(down);
  EXPECT_EQ(down.message(), "the store is down");
  table.counter_fails = false;
  table.load_fails = true;
  EXPECT_FALSE(snap.refresh(false));
  EXPECT_EQ(snap.thread_view().text, "b");
  EXPECT_EQ(snap.counter(), 1);
  table.load_fails = false;
  ASSERT_TRUE(snap.refresh(false));
  EXPECT_EQ(snap.thread_view().text, "c");
}

TEST(PolledSnapshot, ThePollerSeesAChangeMadeElsewhere) {
  Table table;
  opk::PolledSnapshot<Rows> snap;
  snap.set_source(table.source());
  ASSERT_TRUE(snap.refresh(true));
  std::atomic<int> polls{0}, errors{0};
  snap.start(
      10, [&](const opk::Status&) { ++errors; }, [&] { ++polls; });
  table.change("elsewhere");  // as another kernel sharing the store would
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (snap.current()->text != "elsewhere" && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(snap.current()->text, "elsewhere");
  table.counter_fails = true;
  while (errors == 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_GT(errors, 0) << "a failed poll is reported";
  snap.stop();
  const int after_stop = polls;
  EXPECT_GT(after_stop, 0) << "the housekeeping runs at each poll";
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(polls, after_stop) << "stopped";
  EXPECT_EQ(snap.current()->text, "elsewhere") << "a failed poll keeps the snapshot";
}

}  // namespace
