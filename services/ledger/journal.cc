#include "services/ledger/journal.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/time_util.h"

namespace loyalty::ledger {

std::string TransferBody(const v1::Transfer& transfer) {
  v1::Transfer copy = transfer;
  copy.clear_prev_hash();
  copy.clear_hash();
  std::string bytes;
  google::protobuf::io::StringOutputStream out(&bytes);
  {
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    copy.SerializeToCodedStream(&coded);
  }
  return bytes;
}

std::string ChainHash(absl::string_view prev_hash_hex, absl::string_view body) {
  std::string input = absl::HexStringToBytes(prev_hash_hex);
  input.append(body.data(), body.size());
  return crypto::Sha256Hex(input);
}

ChainVerification VerifyChainRows(absl::string_view prev_hash_hex, int64_t first_sequence,
                                  const std::vector<JournalRow>& rows) {
  ChainVerification result;
  std::string prev(prev_hash_hex);
  int64_t expected_sequence = first_sequence;
  for (const JournalRow& row : rows) {
    auto fail = [&](std::string detail, std::string expected, std::string stored) {
      result.first_bad_sequence = row.sequence;
      result.expected_hash = std::move(expected);
      result.stored_hash = std::move(stored);
      result.detail = std::move(detail);
      return result;
    };
    if (row.sequence != expected_sequence) {
      result.first_bad_sequence = expected_sequence;
      result.detail = absl::StrCat("sequence gap: expected ", expected_sequence, ", found ", row.sequence);
      return result;
    }
    if (row.prev_hash != prev) return fail("prev_hash does not link to the previous transfer", prev, row.prev_hash);
    const std::string recomputed = ChainHash(prev, row.body);
    if (recomputed != row.hash) return fail("hash does not match the stored transfer", recomputed, row.hash);
    v1::Transfer t;
    if (!t.ParseFromString(row.body)) return fail("body is not a transfer", "", "");
    if (t.sequence() != row.sequence || t.transfer_id() != row.transfer_id ||
        static_cast<int>(t.code()) != row.code || t.debit_account() != row.debit_account ||
        t.credit_account() != row.credit_account || t.points() != row.points ||
        t.partner_id() != row.partner_id || t.member_id() != row.member_id ||
        t.reference() != row.reference || t.related_transfer_id() != row.related_transfer_id ||
        t.hold_id() != row.hold_id ||
        google::protobuf::util::TimeUtil::TimestampToMicroseconds(t.created_at()) !=
            row.created_at_micros) {
      return fail("stored columns differ from the hashed transfer", row.hash, row.hash);
    }
    prev = row.hash;
    ++expected_sequence;
    ++result.verified_count;
  }
  result.last_hash = prev;
  return result;
}

}  // namespace loyalty::ledger
