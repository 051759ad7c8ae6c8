#include "loader/elf_check.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace opk::loader {
namespace {

// The e_machine this kernel was built for; 0 where it is not known here
// (dlopen still refuses a foreign architecture, with its own words).
constexpr uint16_t host_machine() {
#if defined(__x86_64__)
  return EM_X86_64;
#elif defined(__aarch64__)
  return EM_AARCH64;
#elif defined(__i386__)
  return EM_386;
#elif defined(__arm__)
  return EM_ARM;
#elif defined(__riscv)
  return EM_RISCV;
#elif defined(__powerpc64__)
  return EM_PPC64;
#elif defined(__s390x__)
  return EM_S390;
#else
  return 0;
#endif
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

bool read_at(int fd, void* buf, size_t n, uint64_t off) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    const ssize_t got = ::pread(fd, p, n, static_cast<off_t>(off));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    n -= static_cast<size_t>(got);
    off += static_cast<uint64_t>(got);
  }
  return true;
}

// True when [off, off + count * each) lies within `size` bytes, without overflow.
bool within(uint64_t off, uint64_t count, uint64_t each, uint64_t size, uint64_t* end) {
  if (each != 0 && count > (UINT64_MAX - off) / each) return false;
  *end = off + count * each;
  return *end <= size;
}

Status truncated(const std::string& what, uint64_t end, uint64_t size) {
  return Status::invalid("not a complete ELF file (truncated or still being copied?): " + what + " ends at byte " +
                         std::to_string(end) + " of a " + std::to_string(size) + "-byte file");
}

}  // namespace

Status check_elf(const std::filesystem::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) return Status::error("cannot open: " + std::string(std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::error("cannot stat: " + std::string(std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) return Status::invalid("not a regular file");
  const auto size = static_cast<uint64_t>(st.st_size);

  ElfW(Ehdr) eh{};
  if (size < EI_NIDENT || !read_at(fd.get(), eh.e_ident, EI_NIDENT, 0) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
    return Status::invalid("not an ELF file (no ELF magic number at its start)");
  if (size < sizeof eh) return truncated("the ELF header", sizeof eh, size);
  if (!read_at(fd.get(), &eh, sizeof eh, 0)) return Status::error("cannot read the ELF header");
  constexpr unsigned char kClass = sizeof(void*) == 8 ? ELFCLASS64 : ELFCLASS32;
  if (eh.e_ident[EI_CLASS] != kClass)
    return Status::invalid(std::string("built for ") + (eh.e_ident[EI_CLASS] == ELFCLASS32 ? "32" : "64") +
                           "-bit machines; this kernel is " + std::to_string(sizeof(void*) * 8) + "-bit");
  const unsigned char data = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB;
  if (eh.e_ident[EI_DATA] != data) return Status::invalid("built for the other byte order");
  if (eh.e_type != ET_DYN) return Status::invalid("not a shared library (ELF type " + std::to_string(eh.e_type) + ")");
  if (host_machine() != 0 && eh.e_machine != host_machine())
    return Status::invalid("built for another architecture (ELF machine " + std::to_string(eh.e_machine) +
                           ", this kernel's is " + std::to_string(host_machine()) + ")");
  if (eh.e_phnum == 0 || eh.e_phentsize != sizeof(ElfW(Phdr)))
    return Status::invalid("malformed ELF header: no program headers of the expected size");
  uint64_t end = 0;
  if (!within(eh.e_phoff, eh.e_phnum, eh.e_phentsize, size, &end)) return truncated("the program headers", end, size);
  std::vector<ElfW(Phdr)> ph(eh.e_phnum);
  if (!read_at(fd.get(), ph.data(), ph.size() * sizeof(ElfW(Phdr)), eh.e_phoff))
    return Status::error("cannot read the program headers");
  for (size_t i = 0; i < ph.size(); ++i) {
    if (ph[i].p_filesz == 0) continue;
    if (!within(ph[i].p_offset, 1, ph[i].p_filesz, size, &end))
      return truncated("segment " + std::to_string(i), end, size);
  }
  // Sections are not mapped, but the section headers are the last thing
  // the linker writes: a file cut anywhere loses them.
  if (eh.e_shnum != 0) {
    if (eh.e_shentsize != sizeof(ElfW(Shdr))) return Status::invalid("malformed ELF header: section header size");
    if (!within(eh.e_shoff, eh.e_shnum, eh.e_shentsize, size, &end)) return truncated("the section headers", end, size);
    std::vector<ElfW(Shdr)> sh(eh.e_shnum);
    if (!read_at(fd.get(), sh.data(), sh.size() * sizeof(ElfW(Shdr)), eh.e_shoff))
      return Status::error("cannot read the section headers");
    for (size_t i = 0; i < sh.size(); ++i) {
      if (sh[i].sh_type == SHT_NOBITS || sh[i].sh_type == SHT_NULL || sh[i].sh_size == 0) continue;
      if (!within(sh[i].sh_offset, 1, sh[i].sh_size, size, &end))
        return truncated("section " + std::to_string(i), end, size);
    }
  }
  return Status::ok();
}

}  // namespace opk::loader
