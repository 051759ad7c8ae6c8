// Uses the SDK without its HTTP client.
#include <opskernel/status.hpp>

#include <cstdio>

int main() {
  const opk::Status s = opk::Status::ok();
  std::printf("sdk without http: %s\n", s ? "ok" : s.message().c_str());
  return 0;
}
