// The console's files, embedded at build time by web/build.mjs.
#pragma once

#include <cstddef>

namespace opk::console {

// One embedded file: its bytes, raw and gzip-compressed, with a strong ETag.
struct Asset {
  const char* name;  // file name under /administration/assets/ ("index.html" is the page)
  const char* content_type;
  const unsigned char* data;
  size_t size;
  const unsigned char* gzip;
  size_t gzip_size;
  const char* etag;  // quoted, as sent
  bool immutable;    // content-hashed name: cacheable forever
};

extern const Asset kAssets[];
extern const size_t kAssetCount;

}  // namespace opk::console
