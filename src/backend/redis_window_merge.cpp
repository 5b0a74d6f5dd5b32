// RedisWindowMerge: see redis_window_merge.hpp.
#include "redis_window_merge.hpp"

#include <livecast/error.hpp>

#include <algorithm>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

namespace {

// KEYS: parts hash. ARGV: instance id, part, keep ms. One step, so that a
// part never lives without its expiry.
constexpr const char* contribute_script = R"lua(
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
)lua";

// KEYS: parts hash, claim. ARGV: instance id, keep ms. The first caller gets
// {1, parts} and empties the hash; the others {0, 1 when their own part is
// still there (written after the claim: not in the merge), else 0}.
constexpr const char* claim_script = R"lua(
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local fields = redis.call('HGETALL', KEYS[1])
  redis.call('DEL', KEYS[1])
  local parts = {}
  for i = 2, #fields, 2 do parts[#parts + 1] = fields[i] end
  return {1, parts}
end
return {0, redis.call('HEXISTS', KEYS[1], ARGV[1])}
)lua";

}  // namespace

RedisWindowMerge::RedisWindowMerge(asio::io_context& io, RedisCommands& commands, std::string key_prefix)
    : io_(io), commands_(commands), key_prefix_(std::move(key_prefix)) {}

std::chrono::milliseconds RedisWindowMerge::keep_for(std::chrono::milliseconds settle) {
  return std::max<std::chrono::milliseconds>(std::chrono::minutes(1), settle * 10);
}

Backend::WindowContributions RedisWindowMerge::failed() {
  Backend::WindowContributions r;
  r.error = make_error_code(Errc::backend_unavailable);
  r.publish = false;
  return r;
}

void RedisWindowMerge::merge(const std::string& instance_id, const std::string& window_key, std::string contribution,
                             std::chrono::milliseconds settle, Backend::MergeHandler done) {
  if (stopped_) {
    Backend::WindowContributions r = failed();
    r.error = make_error_code(Errc::shutting_down);
    done(std::move(r));
    return;
  }
  const std::uint64_t id = ++next_id_;
  Pending& p = pending_[id];
  p.hash = key_prefix_ + "agg:{" + window_key + "}";
  p.claim = key_prefix_ + "agg-claim:{" + window_key + "}";
  p.instance_id = instance_id;
  p.settle = std::max(settle, std::chrono::milliseconds(0));
  p.done = std::move(done);
  // The claim goes out on the same connection (or to the same node: one
  // slot) after the part, so it is ordered behind it without waiting for the
  // answer.
  p.timer = std::make_unique<asio::steady_timer>(io_, p.settle);
  p.timer->async_wait([this, id](std::error_code ec) {
    if (!ec) claim(id);
  });
  // Last: a refusal may answer at once, and `p` is gone then.
  const std::string keep = std::to_string(keep_for(p.settle).count());
  const std::string hash = p.hash, instance = p.instance_id;
  commands_.execute({"EVAL", contribute_script, "1", hash, instance, contribution, keep},
                    [this, id](std::error_code ec, RedisReply reply) {
                      if (ec || reply.type != RedisReply::Type::integer) finish(id, failed());
                    });
}

void RedisWindowMerge::claim(std::uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;  // its part was refused
  // Copies: a refusal may answer at once, and the entry is gone then.
  const std::string hash = it->second.hash, claim = it->second.claim, instance = it->second.instance_id;
  const std::string keep = std::to_string(keep_for(it->second.settle).count());
  commands_.execute({"EVAL", claim_script, "2", hash, claim, instance, keep},
                    [this, id](std::error_code ec, RedisReply reply) {
                      const auto& e = reply.elements;
                      if (ec || !reply.is_array() || e.size() != 2 || e[0].type != RedisReply::Type::integer) {
                        finish(id, failed());
                        return;
                      }
                      Backend::WindowContributions r;
                      if (e[0].integer == 1 && e[1].is_array()) {
                        r.publish = true;
                        for (const RedisReply& part : e[1].elements)
                          if (part.type == RedisReply::Type::string) r.contributions.push_back(part.string);
                      } else if (e[0].integer == 0 && e[1].type == RedisReply::Type::integer) {
                        r.publish = false;
                        r.included = e[1].integer == 0;
                      } else {
                        r = failed();
                      }
                      finish(id, std::move(r));
                    });
}

void RedisWindowMerge::finish(std::uint64_t id, Backend::WindowContributions result) {
  auto node = pending_.extract(id);
  if (node.empty()) return;  // answered already (stop, or a refused part)
  if (node.mapped().timer) node.mapped().timer->cancel();
  node.mapped().done(std::move(result));
}

void RedisWindowMerge::stop(std::error_code reason) {
  stopped_ = true;
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [id, p] : pending) {
    if (p.timer) p.timer->cancel();
    Backend::WindowContributions r = failed();
    r.error = reason;
    p.done(std::move(r));
  }
}

LIVECAST_END_NAMESPACE
