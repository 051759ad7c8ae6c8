#include "loader/library.h"

#include <boost/dll/shared_library.hpp>
#include <cstring>

#include "loader/elf_check.h"

namespace opk::loader {
namespace {
constexpr size_t kEntry10 = offsetof(opk_plugin_entry, get_extension) + sizeof(void*);

// Boost.DLL's what() wraps dlerror()'s text as "...load() failed (dlerror
// system message: TEXT): Bad file descriptor", the errno part meaningless:
// keep TEXT alone.
std::string dlerror_text(const std::string& what) {
  static const std::string kOpen = "dlerror system message: ";
  const size_t at = what.find(kOpen);
  if (at == std::string::npos) return what;
  std::string text = what.substr(at + kOpen.size());
  if (const size_t close = text.rfind("): "); close != std::string::npos)
    text.erase(close);
  else if (!text.empty() && text.back() == ')')
    text.pop_back();
  return text;
}
}  // namespace

Library::~Library() = default;

Status Library::open(const std::filesystem::path& path, std::unique_ptr<Library>* out, uint32_t host_major,
                     uint32_t host_minor) {
  std::unique_ptr<Library> l(new Library());
  l->path_ = path;
  // Before dlopen: a file cut short would crash the process there.
  if (Status elf = check_elf(path); !elf)
    return Status(elf.code(), "cannot load " + path.string() + ": " + elf.message());
  try {
    // rtld_now: an unresolved symbol fails here, not in the middle of a run.
    l->lib_ = std::make_unique<boost::dll::shared_library>(
        path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    // The throwing overload carries dlerror()'s text ("file too short", "undefined symbol: X").
    return Status::error("cannot load: " + dlerror_text(e.what()));
  }
  if (!l->lib_->has(OPK_PLUGIN_ENTRY_SYMBOL)) {
    for (int major = 2; major <= 9; ++major) {
      if (l->lib_->has("opk_plugin_entry_v" + std::to_string(major)))
        return Status::incompatible("built for plugin ABI major " + std::to_string(major) +
                                    " (exports opk_plugin_entry_v" + std::to_string(major) +
                                    "); this kernel speaks ABI " + std::to_string(host_major));
    }
    return Status::not_found(std::string("no entry symbol ") + OPK_PLUGIN_ENTRY_SYMBOL +
                             " (not an Opskernel plugin, or not built with OPK_PLUGIN / opk_add_plugin)");
  }
  const auto& raw = l->lib_->get<const opk_plugin_entry>(OPK_PLUGIN_ENTRY_SYMBOL);
  // The first two fields are frozen: read the version before anything else.
  const uint32_t major = raw.abi_major, minor = raw.abi_minor;
  const std::string built = std::to_string(major) + "." + std::to_string(minor);
  const std::string speaks = std::to_string(host_major) + "." + std::to_string(host_minor);
  if (major != host_major)
    return Status::incompatible("built for plugin ABI " + built + "; this kernel speaks ABI " + speaks +
                                " (a different major version is never compatible)");
  if (raw.struct_size < kEntry10)
    return Status::incompatible("entry struct_size " + std::to_string(raw.struct_size) +
                                " is smaller than the ABI 1.0 size " + std::to_string(kEntry10));
  std::memcpy(&l->entry_, &raw, std::min<size_t>(raw.struct_size, sizeof l->entry_));
  if (minor > host_minor && l->entry_.min_host_minor > host_minor)
    return Status::incompatible("built for plugin ABI " + built + " and needs a kernel of at least ABI " +
                                std::to_string(major) + "." + std::to_string(l->entry_.min_host_minor) +
                                "; this kernel speaks ABI " + speaks);
  if (l->entry_.get_manifest == nullptr || l->entry_.init == nullptr || l->entry_.deinit == nullptr)
    return Status::invalid("entry lacks get_manifest, init or deinit");
  const opk_manifest* m = nullptr;
  try {
    m = l->entry_.get_manifest();
  } catch (...) {
    // Not relied upon (exceptions must not cross the ABI), only a last guard.
    return Status::invalid("get_manifest threw an exception");
  }
  if (m == nullptr) return Status::invalid("get_manifest returned NULL");
  Status st = read_manifest(m, l->entry_.get_extension != nullptr, &l->manifest_);
  if (!st) return st;
  l->manifest_.abi_major = major;
  l->manifest_.abi_minor = minor;
  *out = std::move(l);
  return Status::ok();
}

}  // namespace opk::loader
