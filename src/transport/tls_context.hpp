// One transport's TLS configuration: the OpenSSL context new handshakes use,
// built from TlsSettings, and its reloading when the certificate or key file
// changes (or on request). A reload builds a whole new context; connections
// keep the one they started with (ByteStream holds it), so an open session
// is never touched, and a pair that does not load leaves the current one in
// place.
//
// Threads: shared by a transport's shards; every member may be called from
// any thread (a mutex guards the current context and the files' state, held
// for a pointer copy, or for the loading itself during a reload).
#pragma once

#include <livecast/config.hpp>
#include <livecast/tls.hpp>

#include <asio/ssl/context.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

class TlsContext {
 public:
  // How a failed reload is reported (SessionHost::report_error).
  using Report = std::function<void(const std::string& what, std::error_code ec)>;

  // Loads the pair; throws std::system_error when it cannot (a transport's
  // start(): a bad configuration fails loudly).
  TlsContext(TlsSettings settings, Report report);

  // The context for a new handshake. When reload_check_interval has passed
  // since the last look, looks at the files' modification times first and
  // loads a changed pair.
  std::shared_ptr<asio::ssl::context> current();

  // Loads the files again now; an error leaves the current pair (and is
  // reported and counted).
  std::error_code reload();

  void count_handshake_failure() noexcept { handshakes_failed_.fetch_add(1, std::memory_order_relaxed); }
  TlsMetrics metrics() const noexcept;

  // What a file looked like: a replaced file (renamed over, the way renewal
  // tools write) is a new inode even when the clock's tick has not moved.
  struct FileStamp {
    std::uint64_t device = 0, inode = 0, size = 0;
    std::int64_t mtime_ns = 0;
    bool operator==(const FileStamp& o) const noexcept {
      return device == o.device && inode == o.inode && size == o.size && mtime_ns == o.mtime_ns;
    }
  };
  struct Stamp {  // the two files when last loaded (or tried)
    FileStamp cert, key;
    bool operator==(const Stamp& o) const noexcept { return cert == o.cert && key == o.key; }
  };

 private:
  // Builds a context from the files; null with `ec` set when they do not load.
  std::shared_ptr<asio::ssl::context> load(std::error_code& ec) const;
  Stamp stamp(std::error_code& ec) const;
  std::error_code reload_locked();

  const TlsSettings settings_;
  const Report report_;
  std::mutex mutex_;
  std::shared_ptr<asio::ssl::context> current_;
  Stamp tried_;  // the files' times at the last load, successful or not
  std::chrono::steady_clock::time_point last_check_;
  std::atomic<std::uint64_t> handshakes_failed_{0}, reloads_{0}, reload_failures_{0};
};

}  // namespace detail
LIVECAST_END_NAMESPACE
