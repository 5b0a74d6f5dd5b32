// Session resumption's sans-I/O parts: see session_resumption.hpp.
#include "session_resumption.hpp"

#include <livecast/protocol.hpp>

#include <algorithm>
#include <charconv>
#include <limits>

LIVECAST_BEGIN_NAMESPACE

namespace {

// FNV-1a, 32 bits: the token names a topic among one session's few, so a
// short hash does; two topics of one record with the same hash make that
// record unresumable rather than ambiguous.
std::uint32_t topic_key(std::string_view topic) noexcept {
  std::uint32_t h = 2166136261u;
  for (unsigned char c : topic) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

constexpr char hex_digits[] = "0123456789abcdef";

struct Token {
  std::uint32_t key = 0;
  std::uint64_t offset = 0;
};

// "<8 hex digits>-<offset>", as publication_token writes it.
std::optional<Token> parse_token(std::string_view text) {
  if (text.size() < 10 || text[8] != '-') return std::nullopt;
  Token t;
  for (std::size_t i = 0; i < 8; ++i) {
    const char c = text[i];
    std::uint32_t digit;
    if (c >= '0' && c <= '9') digit = static_cast<std::uint32_t>(c - '0');
    else if (c >= 'a' && c <= 'f') digit = static_cast<std::uint32_t>(c - 'a' + 10);
    else return std::nullopt;
    t.key = (t.key << 4) | digit;
  }
  const char* first = text.data() + 9;
  const char* last = text.data() + text.size();
  const auto [end, ec] = std::from_chars(first, last, t.offset);
  if (ec != std::errc() || end != last) return std::nullopt;
  return t;
}

// The record's text: "lcr1" then fields separated by spaces; a string is
// "<length>:<bytes>", a number its decimal digits.
class RecordWriter {
 public:
  void text(std::string_view s) {
    number(s.size());
    out_.back() = ':';
    out_.append(s);
    out_.push_back(' ');
  }
  void number(std::uint64_t v) {
    char digits[24];
    const auto r = std::to_chars(digits, digits + sizeof digits, v);
    out_.append(digits, r.ptr);
    out_.push_back(' ');
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_ = "lcr1 ";
};

class RecordReader {
 public:
  explicit RecordReader(std::string_view in) : in_(in) {}
  bool header() { return take("lcr1 "); }
  bool number(std::uint64_t& v) {
    const auto [end, ec] = std::from_chars(in_.data(), in_.data() + in_.size(), v);
    if (ec != std::errc() || end == in_.data()) return false;
    in_.remove_prefix(static_cast<std::size_t>(end - in_.data()));
    return take(" ");
  }
  bool text(std::string& s) {
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(in_.data(), in_.data() + in_.size(), n);
    if (ec != std::errc() || end == in_.data()) return false;
    in_.remove_prefix(static_cast<std::size_t>(end - in_.data()));
    if (!take(":") || n + 1 > in_.size() || in_[n] != ' ') return false;
    s.assign(in_.substr(0, n));
    in_.remove_prefix(n + 1);
    return true;
  }
  bool at_end() const noexcept { return in_.empty(); }

 private:
  bool take(std::string_view s) {
    if (in_.substr(0, s.size()) != s) return false;
    in_.remove_prefix(s.size());
    return true;
  }
  std::string_view in_;
};

}  // namespace

std::string publication_token(std::string_view topic, std::uint64_t offset) {
  std::string out(8, '0');
  std::uint32_t key = topic_key(topic);
  for (std::size_t i = 8; i-- > 0; key >>= 4) out[i] = hex_digits[key & 0xf];
  out.push_back('-');
  char digits[24];
  const auto r = std::to_chars(digits, digits + sizeof digits, offset);
  out.append(digits, r.ptr);
  return out;
}

namespace detail {

std::string ResumeRecord::serialize() const {
  RecordWriter w;
  w.text(principal_id);
  w.text(session_name);
  w.number(complete ? 1 : 0);
  w.number(subscriptions.size());
  for (const ResumeRecord::Subscription& s : subscriptions) {
    w.number(s.id);
    w.text(s.topic);
    w.text(s.start.epoch);
    w.number(s.start.offset);
    w.number(s.last_queued);
  }
  w.number(queued.size());
  for (const auto& [id, offset] : queued) {
    w.number(id);
    w.number(offset);
  }
  return w.take();
}

std::optional<ResumeRecord> ResumeRecord::parse(std::string_view text) {
  RecordReader r(text);
  ResumeRecord record;
  std::uint64_t complete = 0, count = 0;
  if (!r.header() || !r.text(record.principal_id) || !r.text(record.session_name) || !r.number(complete) || complete > 1 || !r.number(count))
    return std::nullopt;
  record.complete = complete == 1;
  // Each entry takes at least a few bytes: a count past that is corrupt.
  if (count > text.size()) return std::nullopt;
  for (std::uint64_t i = 0; i < count; ++i) {
    Subscription s;
    std::uint64_t id = 0;
    if (!r.number(id) || id > std::numeric_limits<std::uint32_t>::max() || !r.text(s.topic) ||
        !r.text(s.start.epoch) || !r.number(s.start.offset) || !r.number(s.last_queued))
      return std::nullopt;
    s.id = static_cast<std::uint32_t>(id);
    record.subscriptions.push_back(std::move(s));
  }
  if (!r.number(count) || count > text.size()) return std::nullopt;
  for (std::uint64_t i = 0; i < count; ++i) {
    std::uint64_t id = 0, offset = 0;
    if (!r.number(id) || id > std::numeric_limits<std::uint32_t>::max() || !r.number(offset)) return std::nullopt;
    record.queued.emplace_back(static_cast<std::uint32_t>(id), offset);
  }
  if (!r.at_end()) return std::nullopt;
  return record;
}

std::optional<std::vector<std::pair<std::string, StreamPosition>>> resume_positions(const ResumeRecord& record,
                                                                                 std::string_view last_token) {
  const auto& subs = record.subscriptions;
  for (std::size_t i = 0; i < subs.size(); ++i)
    for (std::size_t j = i + 1; j < subs.size(); ++j)
      if (topic_key(subs[i].topic) == topic_key(subs[j].topic)) return std::nullopt;

  // Where the client stands in `queued`: the index just past its last
  // publication (0: it received none of them).
  std::size_t received = 0;
  if (last_token.empty()) {
    if (!record.complete) return std::nullopt;
  } else {
    const std::optional<Token> token = parse_token(last_token);
    if (!token) return std::nullopt;
    auto sub = std::find_if(subs.begin(), subs.end(),
                            [&](const ResumeRecord::Subscription& s) { return topic_key(s.topic) == token->key; });
    if (sub == subs.end()) return std::nullopt;
    bool found = false;
    for (std::size_t i = record.queued.size(); i-- > 0;) {
      if (record.queued[i].first == sub->id && record.queued[i].second == token->offset) {
        received = i + 1;
        found = true;
        break;
      }
    }
    if (!found) return std::nullopt;
  }

  std::vector<std::pair<std::string, StreamPosition>> positions;
  positions.reserve(subs.size());
  for (const ResumeRecord::Subscription& s : subs) {
    StreamPosition at{s.start.epoch, s.last_queued};
    for (std::size_t i = received; i < record.queued.size(); ++i) {
      if (record.queued[i].first != s.id) continue;
      // Its first publication the client may not have received.
      at.offset = record.queued[i].second > 0 ? record.queued[i].second - 1 : 0;
      break;
    }
    positions.emplace_back(s.topic, std::move(at));
  }
  return positions;
}

ResumeTracker::ResumeTracker(std::size_t capacity) : capacity_(std::max<std::size_t>(capacity, 1)) {}

ResumeRecord::Subscription* ResumeTracker::find(std::string_view topic) noexcept {
  for (auto& s : subscriptions_)
    if (s.topic == topic) return &s;
  return nullptr;
}

void ResumeTracker::started(const std::string& topic, const StreamPosition& head) {
  ResumeRecord::Subscription* s = find(topic);
  if (!s) {
    subscriptions_.emplace_back();
    s = &subscriptions_.back();
    s->topic = topic;
  }
  // A new id when it starts over: its earlier publications in the ring
  // belong to the history it no longer follows.
  s->id = next_id_++;
  s->start = head;
  s->last_queued = head.offset;
}

void ResumeTracker::left(std::string_view topic) {
  auto it = std::find_if(subscriptions_.begin(), subscriptions_.end(),
                         [&](const ResumeRecord::Subscription& s) { return s.topic == topic; });
  if (it == subscriptions_.end()) return;
  *it = std::move(subscriptions_.back());
  subscriptions_.pop_back();
}

void ResumeTracker::queued(std::string_view topic, std::string_view epoch, std::uint64_t offset) {
  ResumeRecord::Subscription* s = find(topic);
  if (!s) return;  // queued before the subscription started (held) or after it ended
  s->last_queued = offset;
  // A topic that had no history when the subscription started has no epoch
  // until its first publication gives it one.
  if (s->start.epoch.empty() && !epoch.empty()) s->start.epoch.assign(epoch);
  if (ring_.size() < capacity_) {
    ring_.emplace_back(s->id, offset);
    return;
  }
  ring_[next_] = {s->id, offset};
  next_ = (next_ + 1) % capacity_;
  wrapped_ = true;
}

ResumeRecord ResumeTracker::record(std::string principal_id, std::string session_name) const {
  ResumeRecord r;
  r.principal_id = std::move(principal_id);
  r.session_name = std::move(session_name);
  r.subscriptions = subscriptions_;
  r.complete = !wrapped_;
  r.queued.reserve(ring_.size());
  for (std::size_t i = 0; i < ring_.size(); ++i) r.queued.push_back(ring_[(next_ + i) % ring_.size()]);
  return r;
}

}  // namespace detail
LIVECAST_END_NAMESPACE
