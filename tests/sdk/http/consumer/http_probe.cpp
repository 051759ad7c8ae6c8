// GETs the URL given and prints what came: the status line of the answer,
// or the error. Exits 0 when the client could be used.
#include <opskernel/http.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: http_probe URL\n");
    return 2;
  }
  if (const std::string bad = opk::http::check_url(argv[1]); !bad.empty()) {
    std::printf("URL %s\n", bad.c_str());
    return 1;
  }
  opk::http::Client client;
  if (const opk::Status s = opk::http::Client::create({.user_agent = "Acme/1.0"}, &client); !s) {
    std::printf("client: %s\n", s.message().c_str());
    return 1;
  }
  opk::http::Response answer;
  const opk::Status s = client.send({.url = argv[1], .timeout_ms = 5'000}, &answer);
  std::printf("%s\n", s ? answer.summary().c_str() : s.message().c_str());
  return 0;
}
