-- The request that put a voucher operation in flight (a SHA-256 of its
-- caller scope, idempotency key and request fingerprint). When the repair
-- sweep finishes an honour or cancel whose own answer never landed, the
-- retry of that request is recognised by it and answered with the outcome.
ALTER TABLE vouchers ADD COLUMN IF NOT EXISTS pending_key CHAR(64) NOT NULL DEFAULT '';
