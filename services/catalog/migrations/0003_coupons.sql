-- Coupon batches, their codes, per-member use counts and redemptions. See
-- docs/adr/0011-catalog.md.

CREATE TABLE IF NOT EXISTS coupon_batches (
  coupon_batch_id VARCHAR(40) NOT NULL PRIMARY KEY,
  campaign_id VARCHAR(40) NOT NULL,
  -- The serialized catalog.v1.CouponBatch as created (limits, partners,
  -- validity); redemption_count is the column below.
  body MEDIUMBLOB NOT NULL,
  redemption_count BIGINT NOT NULL DEFAULT 0,
  created_at DATETIME(6) NOT NULL,
  KEY coupon_batches_campaign (campaign_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- One row per code, the normalised code as primary key: validating a code is
-- one primary-key lookup. Codes are random (not secret), so they are stored
-- as they are.
CREATE TABLE IF NOT EXISTS coupon_codes (
  code VARCHAR(20) NOT NULL PRIMARY KEY,
  coupon_batch_id VARCHAR(40) NOT NULL,
  redemption_count INT NOT NULL DEFAULT 0,
  KEY coupon_codes_batch (coupon_batch_id, code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

CREATE TABLE IF NOT EXISTS coupon_member_uses (
  coupon_batch_id VARCHAR(40) NOT NULL,
  member_id VARCHAR(64) NOT NULL,
  uses INT NOT NULL,
  PRIMARY KEY (coupon_batch_id, member_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- grant_state: 0 no points, 1 bonus due (the ledger grant is pending: an
-- outbox the sweep retries), 2 granted, 3 refused by the ledger (the use was
-- given back).
CREATE TABLE IF NOT EXISTS coupon_redemptions (
  coupon_redemption_id VARCHAR(40) NOT NULL PRIMARY KEY,
  code VARCHAR(20) NOT NULL,
  coupon_batch_id VARCHAR(40) NOT NULL,
  campaign_id VARCHAR(40) NOT NULL,
  member_id VARCHAR(64) NOT NULL,
  partner_id VARCHAR(64) NOT NULL,
  bonus_points BIGINT NOT NULL,
  funding_partner_id VARCHAR(64) NOT NULL,
  grant_state TINYINT NOT NULL,
  transfer_id VARCHAR(64) NOT NULL DEFAULT '',
  scope VARCHAR(80) NOT NULL,
  idem_key VARCHAR(128) NOT NULL,
  redeemed_at DATETIME(6) NOT NULL,
  KEY coupon_redemptions_due (grant_state, redeemed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
