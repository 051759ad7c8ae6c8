// opk::http's text helpers (sdk/http/url.cpp): the URL check, its refusals
// each named, and printable().
#include <opskernel/http.hpp>

#include <gtest/gtest.h>

#include <string>

namespace opk::http {
namespace {

TEST(HttpUrl, RefusalsNameWhatIsWrong) {
  const struct {
    const char* url;
    const char* why;
  } cases[] = {
      {"", "is empty"},
      {"https://hooks.example.com/a b", "contains white space or a control character"},
      {"https://hooks.example.com/a\tb", "contains white space or a control character"},
      {"hooks.example.com/x", "has no scheme (http:// or https://)"},
      {"ftp://files.example.com/x", "has the scheme 'ftp' (http or https only)"},
      {"file:///etc/passwd", "has the scheme 'file' (http or https only)"},
      {"https:///x", "has no host"},
      {"https://user:pw@hooks.example.com/x", "holds a user name or password, which is never sent"},
      {"https://hooks.example.com/x#part", "has a fragment (#...), which is never sent: remove it"},
  };
  for (const auto& c : cases) {
    Url parts;
    EXPECT_EQ(check_url(c.url, &parts), c.why) << c.url;
    EXPECT_TRUE(parts.host.empty()) << c.url;  // not filled for a refused URL
  }
  const std::string port = check_url("https://hooks.example.com:99999/x");
  EXPECT_EQ(port.rfind("is not a URL (", 0), 0u) << port;
}

TEST(HttpUrl, AGoodUrlIsSplit) {
  Url u;
  ASSERT_EQ(check_url("https://status.example.com/v1/health?deep=1", &u), "");
  EXPECT_TRUE(u.https);
  EXPECT_EQ(u.host, "status.example.com");
  EXPECT_EQ(u.port, 443);
  EXPECT_EQ(u.path, "/v1/health");
  EXPECT_EQ(u.origin, "https://status.example.com:443");
  ASSERT_EQ(check_url("http://127.0.0.1:8080", &u), "");
  EXPECT_FALSE(u.https);
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(u.path, "");
  EXPECT_EQ(u.origin, "http://127.0.0.1:8080");
  ASSERT_EQ(check_url("http://[::1]:9000/x", &u), "");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.origin, "http://[::1]:9000");
  EXPECT_EQ(check_url("HTTP://example.com/"), "");  // the scheme in any case
}

TEST(HttpPrintable, KeepsUtf8AndReplacesTheRest) {
  EXPECT_EQ(printable("plain text", 100), "plain text");
  EXPECT_EQ(printable("line one\r\nline\ttwo\x7f", 100), "line one  line two");  // controls as spaces, trailing cut
  EXPECT_EQ(printable("caf\xc3\xa9 \xe2\x82\xac 5", 100), "caf\xc3\xa9 \xe2\x82\xac 5");  // UTF-8 kept
  EXPECT_EQ(printable("bad \xff\xfe byte", 100), "bad ?? byte");
  EXPECT_EQ(printable("cut \xe2\x82", 100), "cut ??");  // a sequence cut short
  EXPECT_EQ(printable("\xc3\x28", 100), "?(");          // a lead byte without its continuation
  EXPECT_EQ(printable("", 10), "");
}

TEST(HttpPrintable, StopsAtTheBoundNeverInASequence) {
  EXPECT_EQ(printable("abcdefgh", 5), "abcde");
  EXPECT_EQ(printable("abcd\xc3\xa9", 5), "abcd");  // é would end past 5 bytes
  EXPECT_EQ(printable("abc\xc3\xa9", 5), "abc\xc3\xa9");
  EXPECT_EQ(printable("ab   cd", 4), "ab");  // no trailing spaces
  EXPECT_EQ(printable(std::string(1000, 'x'), 200).size(), 200u);
  EXPECT_EQ(printable("abc", 0), "");
}

}  // namespace
}  // namespace opk::http
