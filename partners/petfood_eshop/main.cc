// loyalty-eshop: a pet-food web shop's checkout, as a reference integration
// of the partner SDK (partners/sdk). Each command is one step the shop's
// backend takes; copy the calls into your checkout code.
//
//   loyalty-eshop quote    CARD AMOUNT [CATEGORY=AMOUNT ...]   points the basket would earn
//   loyalty-eshop rewards  CARD [CATEGORY]                     what the member can redeem now
//   loyalty-eshop redeem   CARD REWARD_ID ORDER_ID             points -> voucher for the order
//   loyalty-eshop honour   VOUCHER_CODE ORDER_ID               a voucher presented at checkout
//   loyalty-eshop cancel   VOUCHER_CODE ORDER_ID               the order was cancelled
//   loyalty-eshop earn     CARD ORDER_ID AMOUNT [CATEGORY=AMOUNT ...]   points for a paid order
//
// Options (before the command): --catalog=HOST:PORT (127.0.0.1:7104),
// --ledger=HOST:PORT (127.0.0.1:7102), --membership=HOST:PORT
// (127.0.0.1:7101), --partner=ID (pet-food), --currency=ISO (EUR). The API
// key comes from LOYALTY_API_KEY.
//
// Idempotency keys come from the order id (with the reward or voucher, as an
// order may hold several), so a checkout retried after a timeout or a crash
// redeems, honours, cancels or earns exactly once.
// Exit codes: 0 done; 1 refused; 2 bad usage; 3 unreachable, try again.
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/time_util.h"
#include "partners/cli_support/cli_support.h"
#include "partners/sdk/loyalty_sdk.h"

namespace {

namespace cv1 = ::loyalty::catalog::v1;
namespace lv1 = ::loyalty::ledger::v1;
using loyalty::partners::Fail;
using loyalty::partners::Options;

struct Settings {
  std::string catalog = "127.0.0.1:7104";
  std::string ledger = "127.0.0.1:7102";
  std::string membership = "127.0.0.1:7101";
  std::string partner = "pet-food";
  std::string currency = "EUR";
  std::string api_key;
};

int Usage() {
  std::cerr << "usage: loyalty-eshop [--catalog=H:P] [--ledger=H:P] [--membership=H:P] [--partner=ID]\n"
               "         quote CARD AMOUNT [CATEGORY=AMOUNT ...]\n"
               "       | rewards CARD [CATEGORY]\n"
               "       | redeem CARD REWARD_ID ORDER_ID\n"
               "       | honour VOUCHER_CODE ORDER_ID\n"
               "       | cancel VOUCHER_CODE ORDER_ID\n"
               "       | earn CARD ORDER_ID AMOUNT [CATEGORY=AMOUNT ...]\n"
               "API key: LOYALTY_API_KEY\n";
  return loyalty::partners::kExitUsage;
}

int Member(const Settings& s, const std::string& card, std::string* member_id) {
  loyalty::sdk::MembershipClient membership(Options(s.membership, s.api_key));
  return loyalty::partners::MemberOfCard(membership, card, member_id);
}

std::string Time(const google::protobuf::Timestamp& t) {
  return t.seconds() == 0 ? "-" : google::protobuf::util::TimeUtil::ToString(t);
}

void PrintVoucher(const cv1::Voucher& v) {
  std::cout << "voucher " << v.voucher_code() << "  " << v.reward_name() << "  " << v.points() << " points  "
            << cv1::VoucherState_Name(v.state()) << "  expires " << Time(v.expires_at()) << "\n";
}

// Fills a basket (amount and lines) from words; false after a message.
template <typename Request>
bool Basket(const Settings& s, const std::vector<std::string>& words, Request& req) {
  int64_t minor = 0;
  if (!loyalty::partners::ParseAmount(words[0], s.currency, &minor)) {
    std::cerr << "AMOUNT: not an amount in " << s.currency << ": " << words[0] << "\n";
    return false;
  }
  req.mutable_amount()->set_amount_minor(minor);
  req.mutable_amount()->set_currency(s.currency);
  return loyalty::partners::ParseLines({words.begin() + 1, words.end()}, s.currency, req.mutable_lines());
}

int Quote(const Settings& s, const std::vector<std::string>& args) {
  if (args.size() < 2) return Usage();
  cv1::QuoteEarnRequest req;
  if (int rc = Member(s, args[0], req.mutable_member_id()); rc != 0) return rc;
  req.set_partner_id(s.partner);
  if (!Basket(s, {args.begin() + 1, args.end()}, req)) return loyalty::partners::kExitUsage;
  loyalty::sdk::CatalogClient catalog(Options(s.catalog, s.api_key));
  auto quote = catalog.QuoteEarn(req);
  if (!quote.ok()) return Fail(quote.error());
  std::cout << "this basket earns " << quote->points() << " points (base " << quote->breakdown().base_points()
            << ", tier " << quote->breakdown().tier_bonus_points() << ")\n";
  for (const auto& bonus : quote->breakdown().campaign_bonuses()) {
    std::cout << "  + " << bonus.campaign_name() << "\n";
  }
  return 0;
}

int Rewards(const Settings& s, const std::vector<std::string>& args) {
  if (args.empty() || args.size() > 2) return Usage();
  cv1::ListRedeemableRewardsRequest req;
  if (int rc = Member(s, args[0], req.mutable_member_id()); rc != 0) return rc;
  if (args.size() == 2) req.set_category(args[1]);
  req.set_page_size(50);
  loyalty::sdk::CatalogClient catalog(Options(s.catalog, s.api_key));
  auto listed = catalog.ListRedeemableRewards(req);
  if (!listed.ok()) return Fail(listed.error());
  std::cout << "member has " << listed->available_points() << " points; redeemable now:\n";
  for (const auto& r : listed->rewards()) {
    const std::string name = r.reward().names().empty() ? r.reward().reward_id() : r.reward().names(0).text();
    std::cout << "  " << r.reward().reward_id() << "  " << name << "  " << r.reward().points_price() << " points  ("
              << r.reward().partner_id() << ")\n";
  }
  if (listed->rewards().empty()) std::cout << "  nothing yet\n";
  return 0;
}

int Redeem(const Settings& s, const std::vector<std::string>& args) {
  if (args.size() != 3) return Usage();
  cv1::RedeemRequest req;
  if (int rc = Member(s, args[0], req.mutable_member_id()); rc != 0) return rc;
  req.set_idempotency_key(absl::StrCat("redeem:", args[2], ":", args[1]));
  req.set_reward_id(args[1]);
  req.set_channel_partner_id(s.partner);
  loyalty::sdk::CatalogClient catalog(Options(s.catalog, s.api_key));
  auto redeemed = catalog.Redeem(req);
  if (!redeemed.ok()) return Fail(redeemed.error());
  PrintVoucher(redeemed->voucher());
  std::cout << "member has " << redeemed->available_points() << " points left\n";
  return 0;
}

int Honour(const Settings& s, const std::vector<std::string>& args) {
  if (args.size() != 2) return Usage();
  cv1::HonourVoucherRequest req;
  req.set_idempotency_key(absl::StrCat("honour:", args[1], ":", args[0]));
  req.set_voucher_code(args[0]);
  req.set_partner_id(s.partner);
  req.set_reference(args[1]);
  loyalty::sdk::CatalogClient catalog(Options(s.catalog, s.api_key));
  auto honoured = catalog.HonourVoucher(req);
  if (!honoured.ok()) return Fail(honoured.error());
  PrintVoucher(honoured->voucher());
  std::cout << "honoured on order " << args[1] << " (transfer " << honoured->voucher().capture_transfer_id()
            << ")\n";
  return 0;
}

int Cancel(const Settings& s, const std::vector<std::string>& args) {
  if (args.size() != 2) return Usage();
  cv1::CancelVoucherRequest req;
  req.set_idempotency_key(absl::StrCat("cancel:", args[1], ":", args[0]));
  req.set_voucher_code(args[0]);
  req.set_reason(absl::StrCat("order ", args[1], " cancelled"));
  loyalty::sdk::CatalogClient catalog(Options(s.catalog, s.api_key));
  auto cancelled = catalog.CancelVoucher(req);
  if (!cancelled.ok()) return Fail(cancelled.error());
  PrintVoucher(cancelled->voucher());
  std::cout << "points and stock returned\n";
  return 0;
}

int Earn(const Settings& s, const std::vector<std::string>& args) {
  if (args.size() < 3) return Usage();
  lv1::EarnRequest req;
  if (int rc = Member(s, args[0], req.mutable_member_id()); rc != 0) return rc;
  req.set_idempotency_key(absl::StrCat("earn:", args[1]));
  req.set_partner_id(s.partner);
  req.set_receipt_reference(args[1]);
  if (!Basket(s, {args.begin() + 2, args.end()}, req)) return loyalty::partners::kExitUsage;
  loyalty::sdk::LedgerClient ledger(Options(s.ledger, s.api_key));
  auto earned = ledger.Earn(req);
  if (!earned.ok()) return Fail(earned.error());
  std::cout << "earned " << earned->points() << " points on order " << args[1] << "\n";
  std::cout << "balance " << loyalty::partners::DescribeBalance(earned->balance()) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  loyalty::partners::CommandLine line;
  const int parsed = loyalty::partners::ParseCommandLine(argc, argv, {{"catalog", &s.catalog},
                                                                       {"ledger", &s.ledger},
                                                                       {"membership", &s.membership},
                                                                       {"partner", &s.partner},
                                                                       {"currency", &s.currency}}, &line);
  if (line.help) return (Usage(), 0);
  if (parsed != 0) return Usage();
  s.api_key = line.api_key;
  std::vector<std::string> args = std::move(line.words);
  const std::string command = args[0];
  args.erase(args.begin());
  if (command == "quote") return Quote(s, args);
  if (command == "rewards") return Rewards(s, args);
  if (command == "redeem") return Redeem(s, args);
  if (command == "honour") return Honour(s, args);
  if (command == "cancel") return Cancel(s, args);
  if (command == "earn") return Earn(s, args);
  return Usage();
}
