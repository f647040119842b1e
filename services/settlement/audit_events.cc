#include "services/settlement/audit_events.h"

#include <string>

#include "common/paging/page_token.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/time/proto_time.h"
#include "common/validation/ids.h"
#include "common/validation/text.h"
#include "services/settlement/settlement_common.h"

namespace loyalty::settlement {

AuditEvents::AuditEvents(const SettlementDeps& deps) : deps_(deps) {}

absl::StatusOr<v1::ListAuditEventsResponse> AuditEvents::ListAuditEvents(const Principal& /*p*/,
                                                                         const v1::ListAuditEventsRequest& r) {
  ASSIGN_OR_RETURN(int page_size, paging::PageSize(r.page_size(), 100, 1000));
  AuditFilter filter;
  filter.entity_type = r.entity_type();
  filter.entity_id = r.entity_id();
  filter.actor_key_id = r.actor_key_id();
  if (r.has_start_time()) filter.start = FromProtoTime(r.start_time());
  if (r.has_end_time()) filter.end = FromProtoTime(r.end_time());
  if (filter.start.has_value() && filter.end.has_value() && *filter.end < *filter.start) {
    return Invalid("end_time", "before start_time");
  }
  const std::string scope = absl::StrCat("audit:", r.entity_type(), ":", r.entity_id(), ":", r.actor_key_id(), ":",
                                         r.start_time().seconds(), ":", r.end_time().seconds());
  int64_t before_id = 0;
  if (!r.page_token().empty()) {
    ASSIGN_OR_RETURN(before_id, paging::DecodePageToken(r.page_token(), scope));
  }
  v1::ListAuditEventsResponse out;
  RETURN_IF_ERROR(deps_.store.Run("ListAuditEvents", [&](SettlementTx& tx) -> absl::Status {
    out.Clear();
    ASSIGN_OR_RETURN(auto rows, tx.ListAudit(filter, before_id, page_size + 1));
    const bool more = static_cast<int>(rows.size()) > page_size;
    if (more) rows.pop_back();
    for (auto& [id, e] : rows) *out.add_events() = std::move(e);
    if (more) out.set_next_page_token(paging::EncodePageToken(scope, rows.back().first));
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace loyalty::settlement
