#!/usr/bin/env python3
"""Earn points at a partner and read the member's balance, with Python gRPC.

Generate the stubs first (see README "From Python"), then:

    PYTHONPATH=/tmp/loyalty-py /usr/bin/python3 partners/examples/ledger_earn.py \
        [--target 127.0.0.1:7102] [--member m-123] [--partner vet-clinic]

The idempotency key is derived from the receipt number, so running the
script twice with the same --receipt earns once and prints the same answer.

Every call carries the partner's API key as metadata
"authorization: Bearer lk_<key_id>_<secret>". The key comes from --api-key,
else from the environment variable LOYALTY_API_KEY, else from the development
keys that deploy/quickstart.sh made (.data/keys/dev-keys.txt, the line
labelled "partner:<partner>", or --key-label).
"""
import argparse
import os
import pathlib
import sys

import grpc
from loyalty.common.v1 import common_pb2
from loyalty.ledger.v1 import ledger_pb2, ledger_pb2_grpc

DEV_KEYS = pathlib.Path(__file__).resolve().parents[2] / ".data" / "keys" / "dev-keys.txt"


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:7102")
    parser.add_argument("--member", default="m-123")
    parser.add_argument("--partner", default="vet-clinic")
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
    with grpc.insecure_channel(args.target) as channel:
        ledger = ledger_pb2_grpc.LedgerServiceStub(channel)
        amount = common_pb2.Money(amount_minor=args.amount_minor, currency="EUR")
        try:
            earned = ledger.Earn(
                ledger_pb2.EarnRequest(
                    idempotency_key=f"earn-{args.partner}-{args.receipt}",
                    partner_id=args.partner,
                    member_id=args.member,
                    amount=amount,
                    lines=[ledger_pb2.PurchaseLine(category="consultation", quantity=1,
                                                   amount=amount)],
                    receipt_reference=args.receipt),
                metadata=metadata, timeout=5)
            balance = ledger.GetBalance(ledger_pb2.GetBalanceRequest(member_id=args.member),
                                        metadata=metadata, timeout=5)
        except grpc.RpcError as error:
            print(f"{error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    print(f"earned {earned.points} points (transfer {earned.transfer.transfer_id}, "
          f"journal sequence {earned.transfer.sequence})")
    print(f"balance of {args.member}: available {balance.balance.available_points}, "
          f"posted {balance.balance.posted_points}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
