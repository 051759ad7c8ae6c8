// library.h -- opens one plugin library with Boost.DLL and checks it: entry
// symbol, ABI version, entry size, manifest. Nothing of the plugin runs but
// get_manifest. Not thread-safe; used from the control thread.
#ifndef OPSKERNEL_KERNEL_LOADER_LIBRARY_H
#define OPSKERNEL_KERNEL_LOADER_LIBRARY_H

#include <opskernel/opk_abi.h>
#include <opskernel/status.hpp>

#include <filesystem>
#include <memory>

#include "loader/manifest.h"

namespace boost::dll {
class shared_library;
}

namespace opk::loader {

// A plugin library that passed every check before init. Unmaps the library
// when destroyed: nothing obtained from it may outlive this object.
class Library {
 public:
  ~Library();
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // The entry, zero-extended to this kernel's struct size.
  const opk_plugin_entry& entry() const { return entry_; }
  const Manifest& manifest() const { return manifest_; }

  // Opens and checks `path` as a kernel speaking ABI `host_major`.`host_minor`.
  // On refusal returns the reason (INCOMPATIBLE for ABI mismatches,
  // INVALID_ARGUMENT for a bad manifest, NOT_FOUND for a missing entry,
  // FAILED when the file cannot be loaded) and *out is untouched.
  static Status open(const std::filesystem::path& path, std::unique_ptr<Library>* out,
                     uint32_t host_major = OPK_ABI_MAJOR, uint32_t host_minor = OPK_ABI_MINOR);

 private:
  Library() = default;
  std::filesystem::path path_;
  std::unique_ptr<boost::dll::shared_library> lib_;
  opk_plugin_entry entry_{};
  Manifest manifest_;
};

}  // namespace opk::loader

#endif
