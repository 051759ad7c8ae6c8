// Start-up check benchmark: what checking the store file for damage adds to
// opening it (store.check_at_start), on a store filled beforehand with
// build/bench/opk_seed_store. Prints, per check (off, quick, full), the time
// to open the store with the file's pages in the page cache (warm) and
// dropped from it first (cold: posix_fadvise DONTNEED; the disk's own cache
// stays), min / median / max of N rounds.
// Usage: opk_store_check_bench STORE_FILE [ROUNDS]
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "store/store.h"

namespace {

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

// Drops the file's pages from the operating system's page cache.
void drop_cache(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

// Milliseconds to open (and close) the store at `path` with `check`.
double open_once(const std::string& path, opk::store::OpenCheck check) {
  const double t0 = now_ms();
  std::unique_ptr<opk::store::Store> st;
  if (opk::Status s = opk::store::open_sqlite(path, false, &st, {}, check); !s) {
    std::fprintf(stderr, "open: %s\n", s.message().c_str());
    std::exit(1);
  }
  st.reset();
  return now_ms() - t0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: opk_store_check_bench STORE_FILE [ROUNDS]\n");
    return 2;
  }
  const std::string path = argv[1];
  const int rounds = argc == 3 ? std::max(1, std::atoi(argv[2])) : 3;
  if (!std::filesystem::exists(path)) {
    std::fprintf(stderr, "%s: no such store (fill one with opk_seed_store)\n", path.c_str());
    return 2;
  }
  int64_t runs = 0;
  {
    std::unique_ptr<opk::store::Store> st;
    if (opk::Status s = opk::store::open_sqlite(path, false, &st); !s) {
      std::fprintf(stderr, "open: %s\n", s.message().c_str());
      return 1;
    }
    std::vector<std::vector<std::optional<std::string>>> rows;
    if (st->query("SELECT COUNT(*) FROM runs", {}, &rows) && !rows.empty() && rows[0][0])
      runs = std::stoll(*rows[0][0]);
  }
  std::printf("opskernel store check at open: %s, %.1f MiB, %lld runs, %d rounds\n", path.c_str(),
              static_cast<double>(std::filesystem::file_size(path)) / (1 << 20), static_cast<long long>(runs), rounds);
  const struct {
    const char* name;
    opk::store::OpenCheck check;
  } checks[] = {{"off", opk::store::OpenCheck::none},
                {"quick", opk::store::OpenCheck::quick},
                {"full", opk::store::OpenCheck::full}};
  for (const auto& c : checks)
    for (bool cold : {false, true}) {
      std::vector<double> ms;
      if (!cold) open_once(path, c.check);  // the pages into the cache
      for (int r = 0; r < rounds; ++r) {
        if (cold) drop_cache(path);
        ms.push_back(open_once(path, c.check));
      }
      std::sort(ms.begin(), ms.end());
      std::printf("  %-5s %-4s  min %8.1f ms  median %8.1f ms  max %8.1f ms\n", c.name, cold ? "cold" : "warm",
                  ms.front(), ms[ms.size() / 2], ms.back());
    }
}
