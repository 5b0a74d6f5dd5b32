// Connections per remote address over all shards of one transport, for the
// max_connections_per_address settings of both transports. Shards share it,
// so it takes a mutex: once when a connection is taken and once when it
// ends, never per message, and held for one hash-map operation.
#pragma once

#include <livecast/config.hpp>

#include <asio/ip/address.hpp>

#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <utility>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

class AddressCounts {
 public:
  // An IPv4 address as its IPv4-mapped IPv6 form, so that a client counts
  // the same whichever family the listening socket has; an IPv6 address by
  // its /64, the block one IPv6 host usually holds (counting single IPv6
  // addresses would let one host open a connection from each of 2^64).
  using Key = std::array<unsigned char, 16>;
  // A counted address; stays valid until its count returns to zero
  // (unordered_map nodes do not move on rehash).
  using Entry = std::pair<const Key, std::size_t>;

  static Key key_of(const asio::ip::address& address) {
    Key key{};
    if (address.is_v4()) return v4_key(address.to_v4());
    const asio::ip::address_v6 v6 = address.to_v6();
    if (v6.is_v4_mapped()) return v4_key(asio::ip::make_address_v4(asio::ip::v4_mapped, v6));
    const asio::ip::address_v6::bytes_type bytes = v6.to_bytes();
    for (std::size_t i = 0; i < 8; ++i) key[i] = bytes[i];
    return key;
  }

  // Counts one more connection from `address`, unless it already has
  // `limit`: then nothing is counted and the answer is null.
  Entry* acquire(const asio::ip::address& address, std::size_t limit) {
    const Key key = key_of(address);
    std::lock_guard<std::mutex> lock(mutex_);
    auto [it, inserted] = counts_.try_emplace(key, 0);
    if (it->second >= limit) {
      if (inserted) counts_.erase(it);  // a limit of 0
      return nullptr;
    }
    ++it->second;
    return &*it;
  }

  // Gives back what acquire() counted; null does nothing.
  void release(Entry* entry) noexcept {
    if (!entry) return;
    std::lock_guard<std::mutex> lock(mutex_);
    if (--entry->second == 0) {
      const Key key = entry->first;  // erase() must not read the key it destroys
      counts_.erase(key);
    }
  }

 private:
  static Key v4_key(const asio::ip::address_v4& v4) {
    Key key{};
    key[10] = 0xff;
    key[11] = 0xff;
    const asio::ip::address_v4::bytes_type bytes = v4.to_bytes();
    for (std::size_t i = 0; i < 4; ++i) key[12 + i] = bytes[i];
    return key;
  }

  struct KeyHash {
    std::size_t operator()(const Key& key) const noexcept {
      return std::hash<std::string_view>()(std::string_view(reinterpret_cast<const char*>(key.data()), key.size()));
    }
  };

  std::mutex mutex_;
  std::unordered_map<Key, std::size_t, KeyHash> counts_;
};

// One connection's place in an AddressCounts, given back once: by release()
// or, at the latest, by the destructor.
class AddressSlot {
 public:
  AddressSlot() = default;
  // Takes a place for `address`; an empty slot when its limit is reached.
  AddressSlot(std::shared_ptr<AddressCounts> counts, const asio::ip::address& address, std::size_t limit)
      : counts_(std::move(counts)), entry_(counts_->acquire(address, limit)) {
    if (!entry_) counts_.reset();
  }
  AddressSlot(AddressSlot&& other) noexcept
      : counts_(std::move(other.counts_)), entry_(std::exchange(other.entry_, nullptr)) {}
  AddressSlot& operator=(AddressSlot&& other) noexcept {
    if (this != &other) {
      release();
      counts_ = std::move(other.counts_);
      entry_ = std::exchange(other.entry_, nullptr);
    }
    return *this;
  }
  AddressSlot(const AddressSlot&) = delete;
  AddressSlot& operator=(const AddressSlot&) = delete;
  ~AddressSlot() { release(); }

  explicit operator bool() const noexcept { return entry_ != nullptr; }

  void release() noexcept {
    if (!entry_) return;
    counts_->release(std::exchange(entry_, nullptr));
    counts_.reset();
  }

 private:
  std::shared_ptr<AddressCounts> counts_;
  AddressCounts::Entry* entry_ = nullptr;
};

}  // namespace detail
LIVECAST_END_NAMESPACE
