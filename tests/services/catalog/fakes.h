#pragma once
// Test doubles of the services the catalog calls (never of the database):
// a thread-safe in-memory ledger with holds, idempotent by key like the real
// one, that can be told to fail at chosen points; a member directory; a
// settable clock.

#include <functional>
#include <map>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "services/catalog/ledger_client.h"

namespace loyalty::catalog::testing {

class TestClock {
 public:
  absl::Time Now() {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ = absl::FromCivil(absl::CivilSecond(2026, 3, 4, 10, 0, 0), absl::UTCTimeZone());
};

class FakeLedger final : public LedgerClient {
 public:
  struct Hold {
    std::string hold_id, member_id, partner_id;
    int64_t points = 0;
    ledger::v1::HoldState state = ledger::v1::HOLD_STATE_PENDING;
    absl::Time expires_at, closed_at;
    std::string closing_transfer_id;
  };

  explicit FakeLedger(TestClock& clock) : clock_(clock) {}

  // --- failure injection (each counter fails that many next calls) ---
  int fail_authorize_unplaced = 0;  // UNAVAILABLE, no hold placed
  int fail_authorize_lost = 0;      // hold placed, answer lost (UNAVAILABLE)
  int fail_void = 0;                // UNAVAILABLE, nothing done
  int fail_capture = 0;             // UNAVAILABLE, nothing done

  void SetPoints(const std::string& member_id, int64_t points) {
    absl::MutexLock lock(&mu_);
    posted_[member_id] = points;
  }
  void Inject(std::function<void(FakeLedger&)> f) {
    absl::MutexLock lock(&mu_);
    f(*this);
  }

  absl::StatusOr<HoldOutcome> Authorize(const std::string& key, const std::string& member_id,
                                        const std::string& partner_id, int64_t points, absl::Duration ttl,
                                        const std::string&) override {
    absl::MutexLock lock(&mu_);
    ++authorize_calls_;
    if (fail_authorize_unplaced > 0) {
      --fail_authorize_unplaced;
      return absl::UnavailableError("ledger unreachable; retry later");
    }
    auto replay = answers_.find("authorize|" + key);
    if (replay != answers_.end()) return Refresh(replay->second);
    absl::StatusOr<HoldOutcome> answer;
    if (Available(member_id) < points) {
      answer = absl::FailedPreconditionError(
          absl::StrCat("not enough points: available ", Available(member_id), ", needed ", points));
    } else {
      Hold h;
      h.hold_id = absl::StrCat("hold-", holds_.size() + 1);
      h.member_id = member_id;
      h.partner_id = partner_id;
      h.points = points;
      h.expires_at = clock_.Now() + ttl;
      holds_[h.hold_id] = h;
      answer = Outcome(h);
    }
    answers_["authorize|" + key] = answer;
    if (fail_authorize_lost > 0 && answer.ok()) {
      --fail_authorize_lost;
      return absl::UnavailableError("ledger unreachable; retry later");
    }
    return answer;
  }

  absl::StatusOr<HoldOutcome> Capture(const std::string& key, const std::string& hold_id,
                                      const std::string&) override {
    absl::MutexLock lock(&mu_);
    if (fail_capture > 0) {
      --fail_capture;
      return absl::UnavailableError("ledger unreachable; retry later");
    }
    auto replay = answers_.find("capture|" + key);
    if (replay != answers_.end()) return replay->second;
    absl::StatusOr<HoldOutcome> answer = Close(hold_id, ledger::v1::HOLD_STATE_CAPTURED, "redeem");
    answers_["capture|" + key] = answer;
    return answer;
  }

  absl::StatusOr<HoldOutcome> Void(const std::string& key, const std::string& hold_id,
                                   const std::string&) override {
    absl::MutexLock lock(&mu_);
    if (fail_void > 0) {
      --fail_void;
      return absl::UnavailableError("ledger unreachable; retry later");
    }
    auto replay = answers_.find("void|" + key);
    if (replay != answers_.end()) return replay->second;
    absl::StatusOr<HoldOutcome> answer = Close(hold_id, ledger::v1::HOLD_STATE_VOIDED, "void");
    answers_["void|" + key] = answer;
    return answer;
  }

  absl::StatusOr<HoldOutcome> GetHold(const std::string& hold_id) override {
    absl::MutexLock lock(&mu_);
    auto it = holds_.find(hold_id);
    if (it == holds_.end()) return absl::NotFoundError("hold not found");
    HoldOutcome out = Outcome(it->second);
    out.available_points = -1;
    return out;
  }

  absl::StatusOr<int64_t> AvailablePoints(const std::string& member_id) override {
    absl::MutexLock lock(&mu_);
    return Available(member_id);
  }

  int fail_grant = 0;                 // UNAVAILABLE, nothing granted
  std::string refuse_grant_member;    // FAILED_PRECONDITION for this member

  absl::StatusOr<std::string> GrantBonus(const std::string& key, const std::string& member_id, int64_t points,
                                         const std::string&, const std::string&, const std::string&) override {
    absl::MutexLock lock(&mu_);
    if (fail_grant > 0) {
      --fail_grant;
      return absl::UnavailableError("ledger unreachable; retry later");
    }
    if (member_id == refuse_grant_member) return absl::FailedPreconditionError("member suspended");
    auto [it, inserted] = grants_.try_emplace(key, absl::StrCat("bonus-", grants_.size() + 1));
    if (inserted) posted_[member_id] += points;
    return it->second;
  }
  int grants() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(grants_.size());
  }

  // 1 point per whole major unit of amount; remembers the last request.
  absl::StatusOr<ledger::v1::QuoteEarnResponse> QuoteEarn(const ledger::v1::QuoteEarnRequest& request) override {
    absl::MutexLock lock(&mu_);
    last_quote_ = request;
    ledger::v1::QuoteEarnResponse out;
    out.set_points(request.amount().amount_minor() / 100);
    return out;
  }
  ledger::v1::QuoteEarnRequest last_quote() {
    absl::MutexLock lock(&mu_);
    return last_quote_;
  }

  // Snapshot of the holds, for the invariants.
  std::map<std::string, Hold> Holds() {
    absl::MutexLock lock(&mu_);
    std::map<std::string, Hold> out;
    for (auto& [id, h] : holds_) {
      Hold copy = h;
      copy.state = StateOf(h);
      out[id] = copy;
    }
    return out;
  }
  int64_t Posted(const std::string& member_id) {
    absl::MutexLock lock(&mu_);
    return posted_[member_id];
  }
  int authorize_calls() {
    absl::MutexLock lock(&mu_);
    return authorize_calls_;
  }

 private:
  ledger::v1::HoldState StateOf(const Hold& h) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    if (h.state == ledger::v1::HOLD_STATE_PENDING && clock_.Now() >= h.expires_at) {
      return ledger::v1::HOLD_STATE_EXPIRED;
    }
    return h.state;
  }
  int64_t Available(const std::string& member_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int64_t pending = 0;
    for (auto& [id, h] : holds_) {
      if (h.member_id == member_id && StateOf(h) == ledger::v1::HOLD_STATE_PENDING) pending += h.points;
    }
    return posted_[member_id] - pending;
  }
  HoldOutcome Outcome(const Hold& h) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    HoldOutcome out;
    out.hold_id = h.hold_id;
    out.state = StateOf(h);
    out.expires_at = h.expires_at;
    out.closed_at = h.closed_at;
    out.closing_transfer_id = h.closing_transfer_id;
    out.available_points = Available(h.member_id);
    return out;
  }
  absl::StatusOr<HoldOutcome> Refresh(const absl::StatusOr<HoldOutcome>& answer) { return answer; }
  absl::StatusOr<HoldOutcome> Close(const std::string& hold_id, ledger::v1::HoldState to, const char* kind)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = holds_.find(hold_id);
    if (it == holds_.end()) return absl::NotFoundError("hold not found");
    Hold& h = it->second;
    const ledger::v1::HoldState now_state = StateOf(h);
    if (now_state != ledger::v1::HOLD_STATE_PENDING) {
      return absl::FailedPreconditionError(
          absl::StrCat("hold is ", ledger::v1::HoldState_Name(now_state), ", not pending"));
    }
    h.state = to;
    h.closed_at = clock_.Now();
    h.closing_transfer_id = absl::StrCat(kind, "-", hold_id);
    if (to == ledger::v1::HOLD_STATE_CAPTURED) posted_[h.member_id] -= h.points;
    return Outcome(h);
  }

  TestClock& clock_;
  absl::Mutex mu_;
  std::map<std::string, Hold> holds_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::StatusOr<HoldOutcome>> answers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int64_t> posted_ ABSL_GUARDED_BY(mu_);
  int authorize_calls_ ABSL_GUARDED_BY(mu_) = 0;
  ledger::v1::QuoteEarnRequest last_quote_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> grants_ ABSL_GUARDED_BY(mu_);
};

class FakePartners final : public PartnerDirectory {
 public:
  void Add(const std::string& partner_id) {
    absl::MutexLock lock(&mu_);
    partners_.insert(partner_id);
  }
  // Settlement unreachable: every question is UNAVAILABLE.
  void SetDown(bool down) {
    absl::MutexLock lock(&mu_);
    down_ = down;
  }
  absl::Status PartnerExists(const std::string& partner_id) override {
    absl::MutexLock lock(&mu_);
    if (down_) return absl::UnavailableError("settlement unreachable");
    return partners_.contains(partner_id) ? absl::OkStatus() : absl::NotFoundError("partner not found");
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_set<std::string> partners_ ABSL_GUARDED_BY(mu_);
  bool down_ ABSL_GUARDED_BY(mu_) = false;
};

class FakeMembers final : public MemberDirectory {
 public:
  void SetTier(const std::string& member_id, const std::string& tier_id) {
    absl::MutexLock lock(&mu_);
    tiers_[member_id] = tier_id;
  }
  absl::StatusOr<MemberTier> TierOf(const std::string& member_id) override {
    absl::MutexLock lock(&mu_);
    MemberTier out;
    auto it = tiers_.find(member_id);
    out.tier_id = it == tiers_.end() ? "base" : it->second;
    out.rank = Rank(out.tier_id);
    return out;
  }
  void ShareWith(const std::string& member_id, const std::string& partner_id) {
    absl::MutexLock lock(&mu_);
    visible_[member_id + "|" + partner_id] = true;
  }
  absl::StatusOr<bool> VisibleTo(const std::string& member_id, const std::string& partner_id) override {
    absl::MutexLock lock(&mu_);
    return visible_.contains(member_id + "|" + partner_id);
  }
  void AddSegment(const std::string& segment_id) {
    absl::MutexLock lock(&mu_);
    segments_.insert(segment_id);
  }
  void RemoveSegment(const std::string& segment_id) {
    absl::MutexLock lock(&mu_);
    segments_.erase(segment_id);
  }
  absl::Status SegmentExists(const std::string& segment_id) override {
    absl::MutexLock lock(&mu_);
    return segments_.contains(segment_id) ? absl::OkStatus() : absl::NotFoundError("segment not found");
  }
  absl::StatusOr<int> RankOf(const std::string& tier_id) override {
    absl::MutexLock lock(&mu_);
    const int r = Rank(tier_id);
    if (r < 0) return absl::NotFoundError("tier not found");
    return r;
  }

 private:
  static int Rank(const std::string& tier_id) {
    if (tier_id == "base") return 0;
    if (tier_id == "silver") return 1;
    if (tier_id == "gold") return 2;
    return -1;
  }
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::string> tiers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, bool> visible_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> segments_ ABSL_GUARDED_BY(mu_);
};

}  // namespace loyalty::catalog::testing
