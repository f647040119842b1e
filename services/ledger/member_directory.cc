#include "services/ledger/member_directory.h"

#include "absl/strings/str_cat.h"

namespace loyalty::ledger {

absl::Status MemberDirectory::CheckIssued(const RulesSnapshot& rules, absl::string_view field,
                                          const std::string& member_id) {
  if (!lookup_ || rules.members.contains(member_id)) return absl::OkStatus();
  {
    absl::MutexLock lock(&mu_);
    if (confirmed_.contains(member_id)) return absl::OkStatus();
    ++lookups_;
  }
  absl::Status issued = lookup_(member_id);
  if (absl::IsNotFound(issued)) {
    return absl::NotFoundError(absl::StrCat(field, ": membership never issued member '", member_id, "'"));
  }
  if (!issued.ok()) return issued;
  absl::MutexLock lock(&mu_);
  if (confirmed_.size() >= kMaxConfirmedMembers) confirmed_.clear();
  confirmed_.insert(member_id);
  return absl::OkStatus();
}

int64_t MemberDirectory::lookups() const {
  absl::MutexLock lock(&mu_);
  return lookups_;
}

}  // namespace loyalty::ledger
