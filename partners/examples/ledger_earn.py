#!/usr/bin/env python3
"""Earn points at a partner and read the member's balance, with Python gRPC.

Generate the stubs first (see README "From Python"), then:

    PYTHONPATH=/tmp/loyalty-py /usr/bin/python3 partners/examples/ledger_earn.py \
        [--target 127.0.0.1:7102] [--member m-123] [--partner vet-clinic]

The idempotency key is derived from the receipt number, so running the
script twice with the same --receipt earns once and prints the same answer.
"""
import argparse
import sys

import grpc
from loyalty.common.v1 import common_pb2
from loyalty.ledger.v1 import ledger_pb2, ledger_pb2_grpc

# Until keys are issued (the auth issue), any well-formed key is accepted; its
# key id scopes the idempotency keys.
API_KEY = "lk_0123456789abcdef_" + "x" * 43


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:7102")
    parser.add_argument("--member", default="m-123")
    parser.add_argument("--partner", default="vet-clinic")
    parser.add_argument("--receipt", default="INV-2026-0001")
    parser.add_argument("--amount-minor", type=int, default=4250, help="EUR cents")
    args = parser.parse_args()

    metadata = [("authorization", "Bearer " + API_KEY)]
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
