-- Membership consumes the ledger's journal (change feed) for member activity
-- and referral rewards. See docs/adr/0009-membership.md.

-- Durable cursors over other services' feeds; the row is locked while a
-- page is applied, so replicas never apply the same page twice.
CREATE TABLE IF NOT EXISTS feed_cursors (
  name VARCHAR(64) NOT NULL PRIMARY KEY,
  position BIGINT NOT NULL,
  updated_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

INSERT IGNORE INTO feed_cursors (name, position, updated_at) VALUES ('ledger_journal', 0, UTC_TIMESTAMP(6));

-- Last earn or redemption, for segments (active_since / inactive_since).
ALTER TABLE members ADD COLUMN IF NOT EXISTS last_activity_at DATETIME(6) NULL;
ALTER TABLE members ADD INDEX IF NOT EXISTS members_activity (last_activity_at, member_id);

-- A referral whose referred member has earned: the reward is due. It stays
-- PENDING until the ledger has granted it (an outbox), so a crash between
-- the grant and the update only repeats an idempotent grant.
ALTER TABLE referrals ADD COLUMN IF NOT EXISTS reward_due BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE referrals ADD INDEX IF NOT EXISTS referrals_due (reward_due, state, id);
