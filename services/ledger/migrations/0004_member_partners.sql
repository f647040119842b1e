-- The partners each member has earned at, for "first purchase at a new
-- partner" campaigns (docs/adr/0006-ledger-earn-rules-cache.md). One row per
-- (member, partner), written by the batch that posts an EARN, so the writer
-- answers "has this member earned here before?" with a primary-key lookup
-- instead of reading the member's history. Earns since reversed still count.
CREATE TABLE IF NOT EXISTS member_partners (
  member_id VARCHAR(64) NOT NULL,
  partner_id VARCHAR(64) NOT NULL,
  -- Journal sequence of the member's first EARN at the partner.
  first_sequence BIGINT NOT NULL,
  PRIMARY KEY (member_id, partner_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- Earns posted before this table existed (code 1 = TRANSFER_CODE_EARN).
INSERT IGNORE INTO member_partners (member_id, partner_id, first_sequence)
SELECT member_id, partner_id, MIN(sequence) FROM transfers WHERE code = 1 GROUP BY member_id, partner_id;
