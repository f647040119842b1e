#!/usr/bin/env python3
"""Enrol a member, earn points for an invoice and read the balance, with Python gRPC.

Generate the stubs first (see README "From Python"), then, with the platform
running (deploy/quickstart.sh start):

    PYTHONPATH=/tmp/loyalty-py /usr/bin/python3 partners/examples/ledger_earn.py \
        [--partner vet-clinic] [--email clara.vogel@example.com] [--receipt INV-2026-0001]

1. MembershipService.LookupMember finds the member by email; if there is none
   yet, MembershipService.Enrol enrols them at the partner. The ledger credits
   only member ids that membership issued (NOT_FOUND otherwise).
2. LedgerService.Earn earns points for the invoice. The idempotency key is
   derived from the receipt number, so running the script twice with the same
   --receipt earns once and prints the same answer.
3. LedgerService.GetBalance reads the member's balance.

Every call carries the partner's API key as metadata
"authorization: Bearer lk_<key_id>_<secret>". The key comes from --api-key,
else from the environment variable LOYALTY_API_KEY, else from the development
keys that deploy/quickstart.sh made (LOYALTY_DEV_KEYS_FILE, default
.data/keys/dev-keys.txt: the line labelled "partner:<partner>", or
--key-label). The services' addresses default to LOYALTY_MEMBERSHIP_ADDR and
LOYALTY_LEDGER_ADDR (as the demo reads them), else 127.0.0.1:7101 and :7102.
"""
import argparse
import os
import pathlib
import re
import sys

import grpc
from loyalty.common.v1 import common_pb2
from loyalty.ledger.v1 import ledger_pb2, ledger_pb2_grpc
from loyalty.membership.v1 import membership_pb2, membership_pb2_grpc

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DEV_KEYS = pathlib.Path(os.environ.get("LOYALTY_DEV_KEYS_FILE")
                        or REPO_ROOT / ".data" / "keys" / "dev-keys.txt")
DEADLINE_S = 5


def dev_key(label: str) -> str:
    """The key labelled `label` in quickstart's development keys file."""
    try:
        lines = DEV_KEYS.read_text().splitlines()
    except OSError:
        return ""
    for line in lines:
        fields = line.split()
        if len(fields) == 2 and fields[0] == label:
            return fields[1]
    return ""


def find_or_enrol(membership, args, metadata) -> str:
    """The member id for args.email: looked up, or enrolled at args.partner."""
    try:
        found = membership.LookupMember(membership_pb2.LookupMemberRequest(email=args.email),
                                        metadata=metadata, timeout=DEADLINE_S)
        print(f"found {args.email}: member {found.member.member_id}", flush=True)
        return found.member.member_id
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
    enrolled = membership.Enrol(
        membership_pb2.EnrolRequest(
            # Keys are 1..128 of [A-Za-z0-9._:-]: the email's "@" becomes ":".
            idempotency_key=re.sub(r"[^A-Za-z0-9._:-]", ":", f"enrol-{args.partner}-{args.email}")[:128],
            given_name=args.given_name,
            family_name=args.family_name,
            email=args.email,
            preferred_language="en",
            enrolling_partner_id=args.partner,
            terms_version="2025-01",
            privacy_version="2025-01"),
        metadata=metadata, timeout=DEADLINE_S)
    print(f"enrolled {args.email} at {args.partner}: member {enrolled.member.member_id}, "
          f"card {enrolled.card.card_number}", flush=True)
    return enrolled.member.member_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--membership", default=os.environ.get("LOYALTY_MEMBERSHIP_ADDR") or "127.0.0.1:7101",
                        help="membership's HOST:PORT")
    parser.add_argument("--ledger", default=os.environ.get("LOYALTY_LEDGER_ADDR") or "127.0.0.1:7102",
                        help="the ledger's HOST:PORT")
    parser.add_argument("--partner", default="vet-clinic")
    parser.add_argument("--email", default="clara.vogel@example.com", help="the member's email")
    parser.add_argument("--given-name", default="Clara", help="for a new member")
    parser.add_argument("--family-name", default="Vogel", help="for a new member")
    parser.add_argument("--receipt", default="INV-2026-0001")
    parser.add_argument("--amount-minor", type=int, default=4250, help="EUR cents")
    parser.add_argument("--api-key", default=os.environ.get("LOYALTY_API_KEY", ""),
                        help="lk_... (default: $LOYALTY_API_KEY, else the development key)")
    parser.add_argument("--key-label", default="",
                        help="label of the development key to use (default partner:<partner>)")
    args = parser.parse_args()

    api_key = args.api_key or dev_key(args.key_label or f"partner:{args.partner}")
    if not api_key:
        print(f"no API key: pass --api-key, set LOYALTY_API_KEY, or run deploy/quickstart.sh "
              f"to make development keys in {DEV_KEYS} (label "
              f"{args.key_label or 'partner:' + args.partner!r})", file=sys.stderr)
        return 2
    metadata = [("authorization", "Bearer " + api_key)]
    try:
        with grpc.insecure_channel(args.membership) as channel:
            member_id = find_or_enrol(membership_pb2_grpc.MembershipServiceStub(channel), args, metadata)
        with grpc.insecure_channel(args.ledger) as channel:
            ledger = ledger_pb2_grpc.LedgerServiceStub(channel)
            amount = common_pb2.Money(amount_minor=args.amount_minor, currency="EUR")
            earned = ledger.Earn(
                ledger_pb2.EarnRequest(
                    idempotency_key=f"earn-{args.partner}-{args.receipt}",
                    partner_id=args.partner,
                    member_id=member_id,
                    amount=amount,
                    lines=[ledger_pb2.PurchaseLine(category="consultation", quantity=1,
                                                   amount=amount)],
                    receipt_reference=args.receipt),
                metadata=metadata, timeout=DEADLINE_S)
            balance = ledger.GetBalance(ledger_pb2.GetBalanceRequest(member_id=member_id),
                                        metadata=metadata, timeout=DEADLINE_S)
    except grpc.RpcError as error:
        print(f"{error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    print(f"earned {earned.points} points (transfer {earned.transfer.transfer_id}, "
          f"journal sequence {earned.transfer.sequence})")
    print(f"balance of {member_id}: available {balance.balance.available_points}, "
          f"posted {balance.balance.posted_points}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
