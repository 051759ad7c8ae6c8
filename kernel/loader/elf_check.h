// elf_check.h -- checks a plugin file's ELF headers before it is mapped.
// dlopen maps a file and touches its pages: a file cut short (a copy still
// in progress during a deployment) then kills the process with SIGBUS. This
// check reads the headers with plain reads and refuses such a file first.
#ifndef OPSKERNEL_KERNEL_LOADER_ELF_CHECK_H
#define OPSKERNEL_KERNEL_LOADER_ELF_CHECK_H

#include <opskernel/status.hpp>

#include <filesystem>

namespace opk::loader {

// OK when `path` is a regular file holding an ELF shared object of this
// machine's class, byte order and architecture whose header tables,
// segments and sections all lie within the file. Otherwise INVALID_ARGUMENT
// naming what is wrong ("truncated: section headers end at byte 9120 of a
// 4096-byte file"), or FAILED when the file cannot be read.
Status check_elf(const std::filesystem::path& path);

}  // namespace opk::loader

#endif
