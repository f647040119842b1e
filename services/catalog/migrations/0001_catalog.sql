-- The catalog schema: rewards, the redeem saga and vouchers. Re-runnable
-- (IF NOT EXISTS): DDL commits implicitly. See docs/adr/0011-catalog.md.

-- Remembered answers of idempotent requests (except Redeem, whose saga row
-- is its own idempotency record), scoped to the calling credential.
CREATE TABLE IF NOT EXISTS idempotency (
  scope VARCHAR(80) NOT NULL,
  idem_key VARCHAR(128) NOT NULL,
  method VARCHAR(64) NOT NULL,
  fingerprint CHAR(64) NOT NULL,
  request MEDIUMBLOB NULL,
  status_code INT NOT NULL DEFAULT 0,
  status_message VARCHAR(1000) NOT NULL DEFAULT '',
  response MEDIUMBLOB NULL,
  completed BOOLEAN NOT NULL DEFAULT FALSE,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (scope, idem_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- A reward. `body` is the serialized catalog.v1.Reward (names, descriptions,
-- type values); the columns are authoritative for what queries filter on and
-- what conditional updates change (state, stock, version), and override the
-- body when read.
CREATE TABLE IF NOT EXISTS rewards (
  reward_id VARCHAR(40) NOT NULL PRIMARY KEY,
  partner_id VARCHAR(64) NOT NULL,
  category VARCHAR(64) NOT NULL,
  state TINYINT NOT NULL,
  points_price BIGINT NOT NULL,
  unlimited_stock BOOLEAN NOT NULL,
  -- stock_available never goes below zero: every decrement is a conditional
  -- UPDATE ... WHERE stock_available >= n.
  stock_available BIGINT NOT NULL,
  stock_reserved BIGINT NOT NULL DEFAULT 0,
  stock_honoured BIGINT NOT NULL DEFAULT 0,
  proposed_by_partner_id VARCHAR(64) NOT NULL DEFAULT '',
  valid_from DATETIME(6) NULL,
  valid_until DATETIME(6) NULL,
  body MEDIUMBLOB NOT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  version BIGINT NOT NULL,
  CONSTRAINT rewards_stock_non_negative CHECK (stock_available >= 0 AND stock_reserved >= 0),
  KEY rewards_partner (partner_id, reward_id),
  KEY rewards_state (state, reward_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- One Redeem saga, keyed by the caller's idempotency key. States:
-- 1 STARTED (claimed; a ledger hold may exist), 2 COMPLETED (stock reserved
-- and voucher issued, in one transaction), 3 COMPENSATING (refused or
-- interrupted; the hold must be voided), 4 FAILED (compensated; status_code
-- holds the answer). The ledger keys derive from redemption_id and attempt.
CREATE TABLE IF NOT EXISTS redemptions (
  redemption_id VARCHAR(40) NOT NULL PRIMARY KEY,
  scope VARCHAR(80) NOT NULL,
  idem_key VARCHAR(128) NOT NULL,
  fingerprint CHAR(64) NOT NULL,
  request MEDIUMBLOB NOT NULL,
  member_id VARCHAR(64) NOT NULL,
  reward_id VARCHAR(40) NOT NULL,
  partner_id VARCHAR(64) NOT NULL,
  channel_partner_id VARCHAR(64) NOT NULL,
  points BIGINT NOT NULL,
  -- The hold's time limit, kept so that a repeated Authorize (recovery) is
  -- the same request at the ledger.
  hold_ttl_seconds BIGINT NOT NULL,
  attempt INT NOT NULL,
  state TINYINT NOT NULL,
  hold_id VARCHAR(64) NOT NULL DEFAULT '',
  voucher_code VARCHAR(16) NOT NULL DEFAULT '',
  status_code INT NOT NULL DEFAULT 0,
  status_message VARCHAR(1000) NOT NULL DEFAULT '',
  response MEDIUMBLOB NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  UNIQUE KEY redemptions_key (scope, idem_key),
  KEY redemptions_state (state, updated_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- Vouchers, visible once their saga completed. voucher_code is the
-- normalised 14-character code (no dashes).
CREATE TABLE IF NOT EXISTS vouchers (
  id BIGINT NOT NULL AUTO_INCREMENT,
  voucher_code CHAR(14) NOT NULL,
  redemption_id VARCHAR(40) NOT NULL,
  reward_id VARCHAR(40) NOT NULL,
  reward_name VARCHAR(100) NOT NULL,
  member_id VARCHAR(64) NOT NULL,
  partner_id VARCHAR(64) NOT NULL,
  channel_partner_id VARCHAR(64) NOT NULL,
  points BIGINT NOT NULL,
  hold_id VARCHAR(64) NOT NULL,
  state TINYINT NOT NULL,
  issued_at DATETIME(6) NOT NULL,
  expires_at DATETIME(6) NOT NULL,
  honoured_at DATETIME(6) NULL,
  cancelled_at DATETIME(6) NULL,
  capture_transfer_id VARCHAR(64) NOT NULL DEFAULT '',
  honour_reference VARCHAR(64) NOT NULL DEFAULT '',
  cancel_reason VARCHAR(500) NOT NULL DEFAULT '',
  PRIMARY KEY (id),
  UNIQUE KEY vouchers_code (voucher_code),
  UNIQUE KEY vouchers_redemption (redemption_id),
  KEY vouchers_member_reward (member_id, reward_id, issued_at),
  KEY vouchers_member (member_id, id),
  KEY vouchers_partner (partner_id, id),
  KEY vouchers_channel (channel_partner_id, id),
  KEY vouchers_expiry (state, expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
