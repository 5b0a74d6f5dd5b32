// SessionDirectory and PendingGathers: see session_directory.hpp.
#include "session_directory.hpp"

#include <algorithm>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

void SessionDirectory::add(SessionState& session) {
  if (!all_.insert(&session).second) return;
  const std::string& principal = session.principal().id;
  if (principal.empty()) return;
  by_principal_[principal].push_back(Entry{&session, std::chrono::system_clock::now()});
}

void SessionDirectory::remove(SessionState& session) {
  if (all_.erase(&session) == 0) return;
  const std::string& principal = session.principal().id;
  if (principal.empty()) return;
  auto it = by_principal_.find(principal);
  if (it == by_principal_.end()) return;
  std::vector<Entry>& entries = it->second;
  auto entry = std::find_if(entries.begin(), entries.end(), [&](const Entry& e) { return e.session == &session; });
  if (entry == entries.end()) return;
  *entry = entries.back();
  entries.pop_back();
  if (entries.empty()) by_principal_.erase(it);
}

void SessionDirectory::list(const std::string& principal_id, std::size_t max,
                            const std::vector<std::shared_ptr<const Protocol>>& protocols, SessionList& out) const {
  auto it = by_principal_.find(principal_id);
  if (it == by_principal_.end()) return;
  out.total += it->second.size();
  std::size_t taken = 0;
  for (const Entry& e : it->second) {
    if (taken++ == max) break;
    const SessionState& s = *e.session;
    SessionInfo info;
    info.id = s.id();
    info.principal_id = s.principal().id;
    info.shard = s.shard();
    info.protocol = std::string(protocols[s.protocol()]->name());
    info.subscriptions = s.subscriptions();
    info.opened_at = e.opened_at;
    info.closing = s.closing();
    out.sessions.push_back(std::move(info));
  }
}

std::size_t SessionDirectory::close(const std::string& principal_id, CloseCode code, std::string_view reason) {
  auto it = by_principal_.find(principal_id);
  if (it == by_principal_.end()) return 0;
  // A copy: the index changes only in close_session, which a transport runs
  // later, never from inside Session::close; but the copy costs little and
  // keeps this loop correct whatever a transport does.
  const std::vector<Entry> entries = it->second;
  std::size_t closed = 0;
  for (const Entry& e : entries) {
    if (e.session->closing()) continue;
    e.session->close(code, reason);
    ++closed;
  }
  return closed;
}

bool PendingGathers::admit(const std::shared_ptr<PendingGather>& gather) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (stopped_) return false;
  pending_.erase(std::remove_if(pending_.begin(), pending_.end(),
                                [](const std::weak_ptr<PendingGather>& g) { return g.expired(); }),
                 pending_.end());
  pending_.push_back(gather);
  return true;
}

void PendingGathers::stop() {
  std::vector<std::weak_ptr<PendingGather>> pending;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopped_ = true;
    pending.swap(pending_);
  }
  for (auto& weak : pending)
    if (auto gather = weak.lock()) gather->finish();
}

}  // namespace detail
LIVECAST_END_NAMESPACE
