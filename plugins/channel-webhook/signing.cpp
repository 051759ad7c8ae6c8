#include "signing.h"

#include <Poco/HMACEngine.h>
#include <Poco/SHA2Engine.h>
#include <opskernel/opk.hpp>

namespace channel_webhook {

namespace {

const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// SHA-256 as HMACEngine wants it (Poco 1.11's SHA2Engine does not declare
// its block and digest sizes).
class Sha256 : public Poco::SHA2Engine {
 public:
  enum { BLOCK_SIZE = 64, DIGEST_SIZE = 32 };
  Sha256() : SHA2Engine(SHA_256) {}
};

int value_of(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Decodes strict base64 (padded, standard alphabet); empty `why` on success.
std::string decode(std::string_view in, std::string* why) {
  std::string out;
  if (in.empty() || in.size() % 4 != 0) {
    *why = "not base64 after whsec_ (its length is not a multiple of 4)";
    return out;
  }
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    for (int k = 0; k < 4; ++k) {
      const char c = in[i + k];
      const bool last_block = i + 4 == in.size();
      if (c == '=' && last_block && k >= 2 && (k == 3 || in[i + 3] == '=')) {
        v[k] = 0;
        continue;
      }
      v[k] = value_of(c);
      if (v[k] < 0) {
        *why = "not base64 after whsec_ (character " + std::to_string(i + k + 7) + ")";
        return out;
      }
    }
    const unsigned n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out += static_cast<char>(n >> 16);
    if (in[i + 2] != '=') out += static_cast<char>((n >> 8) & 255);
    if (in[i + 3] != '=') out += static_cast<char>(n & 255);
  }
  return out;
}

}  // namespace

std::string base64(std::string_view in) {
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string secret_problem(std::string_view secret) {
  if (secret.rfind("whpk_", 0) == 0 || secret.rfind("whsk_", 0) == 0)
    return "an asymmetric (ed25519) key; only symmetric whsec_ secrets are supported";
  if (secret.rfind("whsec_", 0) != 0) return "does not start with whsec_";
  std::string why;
  const std::string key = decode(secret.substr(6), &why);
  if (!why.empty()) return why;
  if (key.size() < 24 || key.size() > 64)
    return std::to_string(key.size()) + " bytes after whsec_; a secret has 24 to 64 (the Standard Webhooks size)";
  return {};
}

std::string secret_key(std::string_view secret) {
  std::string why;
  return decode(secret.substr(6), &why);
}

std::string sign(std::string_view key, std::string_view id, int64_t timestamp_s, std::string_view body) {
  Poco::HMACEngine<Sha256> hmac{std::string(key)};
  hmac.update(id.data(), id.size());
  hmac.update('.');
  hmac.update(std::to_string(timestamp_s));
  hmac.update('.');
  hmac.update(body.data(), body.size());
  const Poco::DigestEngine::Digest& d = hmac.digest();
  return "v1," + base64(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}

std::string signature_header(const std::vector<std::string>& keys, std::string_view id, int64_t timestamp_s,
                             std::string_view body) {
  std::string out;
  for (const std::string& key : keys) {
    if (!out.empty()) out += ' ';
    out += sign(key, id, timestamp_s, body);
  }
  return out;
}

std::string parse_options(const char* options_json, Options* out) {
  out->keys.clear();
  if (options_json == nullptr || *options_json == '\0') return {};
  const opk::Json o = opk::Json::parse(options_json, nullptr, false);
  if (o.is_discarded()) return "options: not JSON";
  if (o.is_null()) return {};
  if (!o.is_object()) return "options: not a JSON object";
  for (auto it = o.begin(); it != o.end(); ++it)
    if (it.key() != "secrets") return "options: unknown field '" + it.key() + "' (the webhook channel takes secrets)";
  if (!o.contains("secrets")) return {};
  const opk::Json& secrets = o["secrets"];
  if (!secrets.is_array()) return "options: secrets: not an array of strings";
  if (secrets.size() > 10) return "options: secrets: more than 10";
  for (size_t i = 0; i < secrets.size(); ++i) {
    const std::string field = "options: secrets[" + std::to_string(i) + "]: ";
    if (!secrets[i].is_string()) return field + "not a string";
    const std::string& s = secrets[i].get_ref<const std::string&>();
    if (const std::string why = secret_problem(s); !why.empty()) return field + why;
    out->keys.push_back(secret_key(s));
  }
  return {};
}

}  // namespace channel_webhook
