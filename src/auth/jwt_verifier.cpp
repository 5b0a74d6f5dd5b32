// JwtVerifier: the order of the checks (jwt.hpp lists it), the key set that
// JWKS reloads swap whole, and the counters. The parts live beside it:
// jwt_token (base64url, JSON, header), jwt_key (OpenSSL), jwt_jwks (the file),
// jwt_claims (time, audience, issuer, Principal).
//
// Threads: verify() runs on every shard thread at once. The key set is an
// immutable snapshot behind a shared_ptr read with std::atomic_load, so a
// verify never waits for a reload; counters are relaxed atomics. Only the one
// thread whose verify finds the JWKS check due (a compare-exchange on the
// next check time) stats the file, and reloads it under reload_mutex.
#include <livecast/jwt.hpp>

#include "jwt_claims.hpp"
#include "jwt_jwks.hpp"
#include "jwt_key.hpp"
#include "jwt_token.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>

LIVECAST_BEGIN_NAMESPACE

using detail::JwtRefusal;
using detail::JwtVerificationKey;

namespace {

// The keys one verify works with: JwtSettings::keys, then the JWKS file's.
struct KeySet {
  std::vector<JwtVerificationKey::Ptr> keys;
};

struct Verdict {
  std::optional<Principal> principal;
  JwtRefusal refusal = JwtRefusal::malformed;
  std::string reason;
};

Verdict refuse(JwtRefusal why, std::string reason) {
  Verdict v;
  v.refusal = why;
  v.reason = std::move(reason);
  return v;
}

// The keys a token may be verified with, or why there are none (jwt.hpp, step 4).
std::vector<const JwtVerificationKey*> candidates(const KeySet& set, JwtAlgorithm alg,
                                                  const std::optional<std::string>& kid, Verdict& why) {
  std::vector<const JwtVerificationKey*> found;
  if (kid) {
    for (const auto& key : set.keys) {
      if (key->kid() != *kid) continue;
      if (key->algorithm() != alg) {
        why = refuse(JwtRefusal::algorithm, "algorithm does not match the key");
        return {};
      }
      found.push_back(key.get());
    }
    if (found.empty()) why = refuse(JwtRefusal::unknown_kid, "unknown key id");
    return found;
  }
  bool alg_has_keys = false;
  for (const auto& key : set.keys) {
    if (key->algorithm() != alg) continue;
    alg_has_keys = true;
    if (key->kid().empty()) found.push_back(key.get());
  }
  if (found.empty())
    why = alg_has_keys ? refuse(JwtRefusal::unknown_kid, "token names no key id")
                       : refuse(JwtRefusal::algorithm, "algorithm not accepted");
  return found;
}

}  // namespace

struct JwtVerifier::Impl {
  explicit Impl(JwtSettings s) : settings(std::move(s)) {}

  // Not changed after construction, but for the keys' material: wiped once
  // the keys are built, so that a secret lives in one place.
  JwtSettings settings;
  std::vector<JwtVerificationKey::Ptr> configured_keys;
  std::shared_ptr<const KeySet> keys;  // std::atomic_load / std::atomic_store only

  std::mutex reload_mutex;
  detail::FileVersion jwks_version;  // the version last read, usable or not; under reload_mutex
  std::atomic<std::int64_t> next_jwks_check{0};  // steady_clock ticks

  std::array<std::atomic<std::uint64_t>, detail::jwt_refusal_count> refusals{};
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> jwks_loads{0};
  std::atomic<std::uint64_t> jwks_errors{0};

  std::chrono::system_clock::time_point now() const {
    return settings.clock ? settings.clock() : std::chrono::system_clock::now();
  }

  Verdict check(std::string_view token) const {
    if (token.empty()) return refuse(JwtRefusal::missing, "no token");
    if (token.size() > settings.max_token_bytes) return refuse(JwtRefusal::oversized, "token too large");
    auto parts = detail::split_jws(token);
    if (!parts) return refuse(JwtRefusal::malformed, "malformed token");
    std::string header_json, payload_json, signature;
    if (!detail::base64url_decode(parts->header, header_json) ||
        !detail::base64url_decode(parts->payload, payload_json) ||
        !detail::base64url_decode(parts->signature, signature))
      return refuse(JwtRefusal::malformed, "malformed token");
    JwtRefusal header_refusal = JwtRefusal::malformed;
    auto header = detail::read_jose_header(header_json, header_refusal);
    if (!header)
      return refuse(header_refusal, header_refusal == JwtRefusal::algorithm ? "unsupported crit header"
                                                                             : "malformed token");
    auto alg = detail::algorithm_named(header->alg);
    if (!alg || std::find(settings.algorithms.begin(), settings.algorithms.end(), *alg) == settings.algorithms.end())
      return refuse(JwtRefusal::algorithm, "algorithm not accepted");

    std::shared_ptr<const KeySet> current = std::atomic_load(&keys);
    Verdict why;
    auto usable = candidates(*current, *alg, header->kid, why);
    if (usable.empty()) return why;
    const bool signed_by_one = std::any_of(usable.begin(), usable.end(), [&](const JwtVerificationKey* key) {
      return key->verifies(parts->signing_input, signature);
    });
    if (!signed_by_one) return refuse(JwtRefusal::signature, "invalid signature");

    // Only now, with the signature verified, is the claims set parsed.
    rapidjson::Document claims;
    if (!detail::parse_json_object(payload_json, claims)) return refuse(JwtRefusal::malformed, "malformed token");
    detail::ClaimsVerdict c = detail::principal_from_claims(claims, settings, now());
    if (!c.principal) return refuse(c.refusal, std::move(c.reason));
    Verdict accepted_one;
    accepted_one.principal = std::move(c.principal);
    return accepted_one;
  }

  // --- the JWKS file ---

  // What reading one version of the file came to.
  struct JwksLoad {
    std::error_code error;
    std::string detail;  // names the file and a key by index or kid, never key material
  };

  // Called by every verify: stats the file when the check is due, reloads
  // it when its version changed.
  void check_jwks_file() {
    if (settings.jwks_file.empty()) return;
    const std::int64_t now_ticks = std::chrono::steady_clock::now().time_since_epoch().count();
    std::int64_t due = next_jwks_check.load(std::memory_order_relaxed);
    if (now_ticks < due) return;
    // Capped at a day, so that the sum below cannot overflow.
    const auto interval = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::min<std::chrono::milliseconds>(settings.jwks_check_interval, std::chrono::hours(24)));
    // One thread checks; the others go on with the keys they have.
    if (!next_jwks_check.compare_exchange_strong(due, now_ticks + interval.count(), std::memory_order_relaxed))
      return;
    JwksLoad load;
    {
      std::lock_guard<std::mutex> lock(reload_mutex);
      if (detail::file_version(settings.jwks_file) == jwks_version) return;
      load = load_jwks_locked();
    }
    report(load);
  }

  std::error_code reload() {
    JwksLoad load;
    {
      std::lock_guard<std::mutex> lock(reload_mutex);
      load = load_jwks_locked();
    }
    report(load);
    return load.error;
  }

  // Reads the file and, when it is usable, puts its keys in use; otherwise
  // counts the error. Holds reload_mutex.
  JwksLoad load_jwks_locked() {
    jwks_version = detail::file_version(settings.jwks_file);
    JwksLoad load;
    auto text = detail::read_small_file(settings.jwks_file, settings.max_jwks_bytes);
    if (!text) {
      load.error = JwksErrc::unreadable;
      load.detail = "cannot read it, or it is over max_jwks_bytes";
    } else {
      detail::JwksKeys loaded = detail::parse_jwks(*text, settings.algorithms);
      load.error = loaded.error;
      load.detail = std::move(loaded.detail);
      if (!load.error) {
        auto next = std::make_shared<KeySet>();
        next->keys = configured_keys;
        if (add_unique(next->keys, loaded.keys, load.detail)) {
          std::atomic_store(&keys, std::shared_ptr<const KeySet>(std::move(next)));
          jwks_loads.fetch_add(1, std::memory_order_relaxed);
          return {};
        }
        load.error = JwksErrc::duplicate_kid;
      }
    }
    load.detail = settings.jwks_file + ": " + load.detail;
    jwks_errors.fetch_add(1, std::memory_order_relaxed);
    return load;
  }

  // Tells the host of an unusable version, with no lock held (the callback
  // may read metrics()).
  void report(const JwksLoad& load) const {
    if (!load.error || !settings.on_jwks_error) return;
    try {
      settings.on_jwks_error(load.error, load.detail);
    } catch (...) {
    }
  }

  // Appends `more` to `keys` unless a kid would be there twice.
  static bool add_unique(std::vector<JwtVerificationKey::Ptr>& keys, const std::vector<JwtVerificationKey::Ptr>& more,
                         std::string& detail) {
    std::set<std::string> kids;
    for (const auto& k : keys)
      if (!k->kid().empty()) kids.insert(k->kid());
    for (const auto& k : more) {
      if (!k->kid().empty() && !kids.insert(k->kid()).second) {
        detail = "kid '" + k->kid() + "' is taken";
        return false;
      }
      keys.push_back(k);
    }
    return true;
  }

  void count(const Verdict& v) {
    if (v.principal)
      accepted.fetch_add(1, std::memory_order_relaxed);
    else
      refusals[static_cast<std::size_t>(v.refusal)].fetch_add(1, std::memory_order_relaxed);
  }
};

JwtVerifier::JwtVerifier(JwtSettings settings) : impl_(std::make_unique<Impl>(std::move(settings))) {
  const JwtSettings& s = impl_->settings;
  if (s.keys.empty() && s.jwks_file.empty())
    throw std::invalid_argument("livecast::JwtVerifier: no keys and no jwks_file");
  if (s.algorithms.empty()) throw std::invalid_argument("livecast::JwtVerifier: `algorithms` is empty");
  if (s.leeway.count() < 0) throw std::invalid_argument("livecast::JwtVerifier: negative leeway");
  if (s.id_claim.empty()) throw std::invalid_argument("livecast::JwtVerifier: empty id_claim");
  std::vector<JwtVerificationKey::Ptr> built;
  for (const JwtKey& key : s.keys) {
    if (std::find(s.algorithms.begin(), s.algorithms.end(), key.algorithm) == s.algorithms.end())
      throw std::invalid_argument(std::string("livecast::JwtVerifier: a ") + to_jose_name(key.algorithm) +
                                  " key, but `algorithms` does not list it");
    std::string error;
    built.push_back(JwtVerificationKey::from_settings(key, error));
    if (!built.back()) throw std::invalid_argument("livecast::JwtVerifier: " + error);
  }
  std::string duplicate;
  if (!Impl::add_unique(impl_->configured_keys, built, duplicate))
    throw std::invalid_argument("livecast::JwtVerifier: " + duplicate);
  for (JwtKey& key : impl_->settings.keys) detail::wipe(key.material);
  auto initial = std::make_shared<KeySet>();
  initial->keys = impl_->configured_keys;
  std::atomic_store(&impl_->keys, std::shared_ptr<const KeySet>(std::move(initial)));
  if (!s.jwks_file.empty()) {
    std::lock_guard<std::mutex> lock(impl_->reload_mutex);
    Impl::JwksLoad load = impl_->load_jwks_locked();
    if (load.error) throw std::system_error(load.error, "livecast::JwtVerifier: " + load.detail);
  }
}

JwtVerifier::~JwtVerifier() = default;

AuthResult JwtVerifier::verify(std::string_view token) const {
  Verdict v;
  try {
    impl_->check_jwks_file();
    v = impl_->check(token);
  } catch (const std::bad_alloc&) {
    v = refuse(JwtRefusal::malformed, "token could not be checked");
  }
  impl_->count(v);
  if (v.principal) return AuthResult::accept(std::move(*v.principal));
  return AuthResult::refuse(std::move(v.reason));
}

std::error_code JwtVerifier::reload() {
  if (impl_->settings.jwks_file.empty()) return JwksErrc::no_file;
  return impl_->reload();
}

JwtMetrics JwtVerifier::metrics() const noexcept {
  JwtMetrics m;
  auto refused = [this](JwtRefusal r) {
    return impl_->refusals[static_cast<std::size_t>(r)].load(std::memory_order_relaxed);
  };
  m.accepted = impl_->accepted.load(std::memory_order_relaxed);
  m.missing = refused(JwtRefusal::missing);
  m.oversized = refused(JwtRefusal::oversized);
  m.malformed = refused(JwtRefusal::malformed);
  m.algorithm = refused(JwtRefusal::algorithm);
  m.unknown_kid = refused(JwtRefusal::unknown_kid);
  m.signature = refused(JwtRefusal::signature);
  m.expired = refused(JwtRefusal::expired);
  m.not_yet_valid = refused(JwtRefusal::not_yet_valid);
  m.audience = refused(JwtRefusal::audience);
  m.issuer = refused(JwtRefusal::issuer);
  m.claims = refused(JwtRefusal::claims);
  m.jwks_loads = impl_->jwks_loads.load(std::memory_order_relaxed);
  m.jwks_errors = impl_->jwks_errors.load(std::memory_order_relaxed);
  m.keys = std::atomic_load(&impl_->keys)->keys.size();
  return m;
}

Authenticator jwt_authenticator(std::shared_ptr<const JwtVerifier> verifier) {
  if (!verifier) throw std::invalid_argument("livecast::jwt_authenticator: no verifier");
  return [verifier = std::move(verifier)](const HandshakeRequest& request) { return verifier->verify(request.token()); };
}

LIVECAST_END_NAMESPACE
