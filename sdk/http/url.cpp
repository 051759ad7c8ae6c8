// opk::http's text helpers: printable() and check_url() (http.hpp).
#include <Poco/Exception.h>
#include <Poco/URI.h>
#include <opskernel/http.hpp>

namespace opk::http {

std::string printable(std::string_view in, size_t max) {
  std::string out;
  size_t i = 0;
  while (i < in.size()) {
    const unsigned char c = static_cast<unsigned char>(in[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool valid = len > 0 && i + len <= in.size();
    for (size_t k = 1; valid && k < len; ++k) valid = (static_cast<unsigned char>(in[i + k]) & 0xC0) == 0x80;
    if (!valid) len = 1;
    if (out.size() + len > max) break;
    if (!valid)
      out += '?';
    else if (len == 1 && (c < 0x20 || c == 0x7f))
      out += ' ';
    else
      out.append(in.substr(i, len));
    i += len;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string check_url(std::string_view url, Url* out) {
  if (url.empty()) return "is empty";
  for (unsigned char c : url)
    if (c <= 0x20 || c == 0x7f) return "contains white space or a control character";
  Poco::URI uri;
  try {
    uri = Poco::URI(std::string(url));
  } catch (const Poco::Exception& e) {
    return "is not a URL (" + e.message() + ")";
  }
  const std::string scheme = uri.getScheme();
  if (scheme != "http" && scheme != "https")
    return scheme.empty() ? "has no scheme (http:// or https://)"
                          : "has the scheme '" + scheme + "' (http or https only)";
  if (uri.getHost().empty()) return "has no host";
  if (!uri.getUserInfo().empty()) return "holds a user name or password, which is never sent";
  if (!uri.getFragment().empty()) return "has a fragment (#...), which is never sent: remove it";
  if (out != nullptr) {
    out->https = scheme == "https";
    out->host = uri.getHost();
    out->port = uri.getPort();
    out->path = uri.getPath();
    const bool ipv6 = out->host.find(':') != std::string::npos;
    out->origin = scheme + "://" + (ipv6 ? "[" + out->host + "]" : out->host) + ":" + std::to_string(out->port);
  }
  return {};
}

}  // namespace opk::http
