-- A voucher whose honour (2) or cancel (1) has been sent to the ledger but
-- whose own update has not landed yet; the sweep repairs those left behind
-- by a crash from the ledger's view of the hold. See docs/adr/0011-catalog.md.
ALTER TABLE vouchers ADD COLUMN IF NOT EXISTS pending_op TINYINT NOT NULL DEFAULT 0;
ALTER TABLE vouchers ADD COLUMN IF NOT EXISTS pending_since DATETIME(6) NULL;
ALTER TABLE vouchers ADD INDEX IF NOT EXISTS vouchers_pending (pending_op, pending_since);
