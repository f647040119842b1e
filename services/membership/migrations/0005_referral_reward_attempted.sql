-- Set, and committed, before the ledger is first asked for a referral's
-- reward. A referral never attempted may be voided without asking the
-- ledger; one attempted is settled through the ledger's answer under the
-- reward's key, which holds even for a grant still in flight.
ALTER TABLE referrals ADD COLUMN IF NOT EXISTS reward_attempted TINYINT NOT NULL DEFAULT 0;
