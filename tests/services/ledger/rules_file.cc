#include "tests/services/ledger/rules_file.h"

#include <cstdio>
#include <cstdlib>

#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace loyalty::ledger::testing {

void AddPartner(internal::v1::EarnRulesFile& file, const std::string& partner_id) {
  auto* p = file.add_partners();
  p->set_partner_id(partner_id);
  p->set_status(settlement::v1::PARTNER_STATUS_ACTIVE);
  auto* c = p->add_contracts();
  c->set_contract_id(partner_id + "-c1");
  c->set_version(1);
  *c->mutable_effective_from() = google::protobuf::util::TimeUtil::SecondsToTimestamp(0);
  c->set_earn_currency("EUR");
  c->set_earn_rate_milli_points_per_unit(1000);
}

std::string WriteRulesFile(const internal::v1::EarnRulesFile& file) {
  std::string json;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(file, &json).ok());
  char path[] = "/tmp/loyalty-rules-XXXXXX.json";
  const int fd = mkstemps(path, 5);
  if (fd < 0) {
    ADD_FAILURE() << "cannot create a rules file";
    return "";
  }
  std::FILE* f = fdopen(fd, "w");
  std::fputs(json.c_str(), f);
  std::fclose(f);
  return path;
}

}  // namespace loyalty::ledger::testing
