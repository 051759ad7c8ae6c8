// failing_vfs.h -- a SQLite VFS for tests over the process's default one,
// whose reads fail with SQLITE_IOERR_READ while the test says so: a store
// whose file cannot be read, without a damaged file or special permissions
// (tests may run as root).
#ifndef OPSKERNEL_TESTS_KERNEL_STORE_FAILING_VFS_H
#define OPSKERNEL_TESTS_KERNEL_STORE_FAILING_VFS_H

#include <sqlite3.h>

#include <atomic>
#include <cstring>

namespace opk::store {

// While an object lives, connections opened in the process use the failing
// VFS (it is the default); they keep using it after the object is gone, as
// a pass-through. One object at a time.
class FailingVfs {
 public:
  FailingVfs() {
    base() = sqlite3_vfs_find(nullptr);
    sqlite3_vfs& v = vfs();
    v = *base();
    v.zName = "opk-failing";
    v.szOsFile = static_cast<int>(sizeof(File)) + base()->szOsFile;
    v.pAppData = nullptr;
    v.xOpen = &open;
    v.xDelete = [](sqlite3_vfs*, const char* name, int sync) { return base()->xDelete(base(), name, sync); };
    v.xAccess = [](sqlite3_vfs*, const char* name, int flags, int* out) {
      return base()->xAccess(base(), name, flags, out);
    };
    v.xFullPathname = [](sqlite3_vfs*, const char* name, int n, char* out) {
      return base()->xFullPathname(base(), name, n, out);
    };
    v.xDlOpen = [](sqlite3_vfs*, const char* name) { return base()->xDlOpen(base(), name); };
    v.xDlError = [](sqlite3_vfs*, int n, char* out) { base()->xDlError(base(), n, out); };
    v.xDlSym = [](sqlite3_vfs*, void* h, const char* sym) { return base()->xDlSym(base(), h, sym); };
    v.xDlClose = [](sqlite3_vfs*, void* h) { base()->xDlClose(base(), h); };
    v.xRandomness = [](sqlite3_vfs*, int n, char* out) { return base()->xRandomness(base(), n, out); };
    v.xSleep = [](sqlite3_vfs*, int us) { return base()->xSleep(base(), us); };
    v.xCurrentTime = [](sqlite3_vfs*, double* out) { return base()->xCurrentTime(base(), out); };
    v.xGetLastError = [](sqlite3_vfs*, int n, char* out) { return base()->xGetLastError(base(), n, out); };
    v.xCurrentTimeInt64 = [](sqlite3_vfs*, sqlite3_int64* out) { return base()->xCurrentTimeInt64(base(), out); };
    v.xSetSystemCall = nullptr;
    v.xGetSystemCall = nullptr;
    v.xNextSystemCall = nullptr;
    v.iVersion = 2;
    sqlite3_vfs_register(&v, 1);
  }
  ~FailingVfs() {
    fail_reads(false);
    sqlite3_vfs_register(base(), 1);
    sqlite3_vfs_unregister(&vfs());
  }
  FailingVfs(const FailingVfs&) = delete;
  FailingVfs& operator=(const FailingVfs&) = delete;

  // Whether every read of a file (database, log) fails from now on.
  void fail_reads(bool on) { failing().store(on); }

 private:
  // An open file: the base VFS's file follows it in the same allocation.
  struct File {
    sqlite3_file file;
    sqlite3_file* real() { return reinterpret_cast<sqlite3_file*>(this + 1); }
  };

  static sqlite3_vfs*& base() {
    static sqlite3_vfs* b = nullptr;
    return b;
  }
  static sqlite3_vfs& vfs() {
    static sqlite3_vfs v;
    return v;
  }
  static std::atomic<bool>& failing() {
    static std::atomic<bool> f{false};
    return f;
  }
  static sqlite3_file* real(sqlite3_file* f) { return reinterpret_cast<File*>(f)->real(); }

  static int open(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags, int* out_flags) {
    File* file = reinterpret_cast<File*>(f);
    file->file.pMethods = nullptr;
    const int rc = base()->xOpen(base(), name, file->real(), flags, out_flags);
    if (rc == SQLITE_OK && file->real()->pMethods) file->file.pMethods = &methods();
    return rc;
  }

  static const sqlite3_io_methods& methods() {
    static const sqlite3_io_methods m = {
        3,
        [](sqlite3_file* f) { return real(f)->pMethods->xClose(real(f)); },
        [](sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
          if (failing().load()) return SQLITE_IOERR_READ;
          return real(f)->pMethods->xRead(real(f), buf, n, off);
        },
        [](sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
          return real(f)->pMethods->xWrite(real(f), buf, n, off);
        },
        [](sqlite3_file* f, sqlite3_int64 size) { return real(f)->pMethods->xTruncate(real(f), size); },
        [](sqlite3_file* f, int flags) { return real(f)->pMethods->xSync(real(f), flags); },
        [](sqlite3_file* f, sqlite3_int64* size) { return real(f)->pMethods->xFileSize(real(f), size); },
        [](sqlite3_file* f, int lock) { return real(f)->pMethods->xLock(real(f), lock); },
        [](sqlite3_file* f, int lock) { return real(f)->pMethods->xUnlock(real(f), lock); },
        [](sqlite3_file* f, int* out) { return real(f)->pMethods->xCheckReservedLock(real(f), out); },
        [](sqlite3_file* f, int op, void* arg) { return real(f)->pMethods->xFileControl(real(f), op, arg); },
        [](sqlite3_file* f) { return real(f)->pMethods->xSectorSize(real(f)); },
        [](sqlite3_file* f) { return real(f)->pMethods->xDeviceCharacteristics(real(f)); },
        [](sqlite3_file* f, int page, int size, int extend, void volatile** out) {
          return real(f)->pMethods->xShmMap(real(f), page, size, extend, out);
        },
        [](sqlite3_file* f, int offset, int n, int flags) {
          return real(f)->pMethods->xShmLock(real(f), offset, n, flags);
        },
        [](sqlite3_file* f) { real(f)->pMethods->xShmBarrier(real(f)); },
        [](sqlite3_file* f, int del) { return real(f)->pMethods->xShmUnmap(real(f), del); },
        [](sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
          // Mapped pages would bypass the failing reads: none while failing.
          if (failing().load()) {
            *out = nullptr;
            return SQLITE_OK;
          }
          return real(f)->pMethods->xFetch(real(f), off, n, out);
        },
        [](sqlite3_file* f, sqlite3_int64 off, void* p) { return real(f)->pMethods->xUnfetch(real(f), off, p); },
    };
    return m;
  }
};

}  // namespace opk::store

#endif
