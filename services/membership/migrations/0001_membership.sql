-- The membership schema. Re-runnable (IF NOT EXISTS): DDL commits implicitly.
-- Every table compares byte for byte (utf8mb4_nopad_bin); emails are stored
-- normalised (lower case) and phones in E.164, so equality is exact.

-- One row: the feed version counter. Every change to a member's snapshot
-- locks it (FOR UPDATE) and takes the next version, so versions are handed
-- out in commit order and a reader polling "version > N" never skips one.
CREATE TABLE IF NOT EXISTS feed_head (
  id TINYINT NOT NULL PRIMARY KEY,
  last_version BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

INSERT IGNORE INTO feed_head (id, last_version) VALUES (1, 0);

CREATE TABLE IF NOT EXISTS members (
  member_id VARCHAR(40) NOT NULL PRIMARY KEY,
  status TINYINT NOT NULL,
  status_reason VARCHAR(500) NOT NULL DEFAULT '',
  given_name VARCHAR(100) NOT NULL,
  family_name VARCHAR(100) NOT NULL,
  email VARCHAR(254) NULL,
  phone VARCHAR(16) NULL,
  birth_date DATE NULL,
  birth_month TINYINT NOT NULL DEFAULT 0,
  preferred_language VARCHAR(16) NOT NULL,
  enrolling_partner_id VARCHAR(64) NOT NULL,
  referral_code VARCHAR(16) NOT NULL,
  referred_by_member_id VARCHAR(40) NULL,
  -- Current tier (MemberTier without its display fields).
  tier_id VARCHAR(32) NOT NULL,
  tier_basis TINYINT NOT NULL,
  tier_since DATETIME(6) NOT NULL,
  tier_retained_until DATETIME(6) NULL,
  tier_paid_until DATETIME(6) NULL,
  tier_qualifying_points BIGINT NOT NULL DEFAULT 0,
  tier_evaluated_at DATETIME(6) NULL,
  terms_version VARCHAR(32) NOT NULL,
  terms_accepted_at DATETIME(6) NOT NULL,
  privacy_version VARCHAR(32) NOT NULL,
  privacy_accepted_at DATETIME(6) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  version BIGINT NOT NULL,
  erased_at DATETIME(6) NULL,
  snapshot_version BIGINT NOT NULL,
  UNIQUE KEY members_email (email),
  UNIQUE KEY members_phone (phone),
  UNIQUE KEY members_referral_code (referral_code),
  UNIQUE KEY members_snapshot_version (snapshot_version),
  KEY members_tier (tier_id, member_id),
  KEY members_partner (enrolling_partner_id, member_id),
  KEY members_birth_month (birth_month, member_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

CREATE TABLE IF NOT EXISTS cards (
  card_number CHAR(16) NOT NULL PRIMARY KEY,
  member_id VARCHAR(40) NOT NULL,
  state TINYINT NOT NULL,
  issued_at DATETIME(6) NOT NULL,
  deactivated_at DATETIME(6) NULL,
  block_reason TINYINT NOT NULL DEFAULT 0,
  replaced_by_card_number CHAR(16) NOT NULL DEFAULT '',
  KEY cards_member (member_id, issued_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- Current consents. kind 1 = channel, 2 = data sharing; partner_id '' is the
-- coalition operator; channel 0 for data sharing.
CREATE TABLE IF NOT EXISTS consents (
  member_id VARCHAR(40) NOT NULL,
  kind TINYINT NOT NULL,
  channel TINYINT NOT NULL,
  partner_id VARCHAR(64) NOT NULL,
  granted BOOLEAN NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  source TINYINT NOT NULL,
  PRIMARY KEY (member_id, kind, channel, partner_id),
  KEY consents_partner (partner_id, kind, granted, member_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- Every consent change, with time and source. Never updated.
CREATE TABLE IF NOT EXISTS consent_events (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  consent_event_id VARCHAR(40) NOT NULL,
  member_id VARCHAR(40) NOT NULL,
  occurred_at DATETIME(6) NOT NULL,
  kind TINYINT NOT NULL,
  source TINYINT NOT NULL,
  actor_key_id VARCHAR(64) NOT NULL,
  channel TINYINT NOT NULL,
  partner_id VARCHAR(64) NOT NULL,
  granted BOOLEAN NOT NULL,
  document_version VARCHAR(32) NOT NULL,
  KEY consent_events_member (member_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- The tier ladder: one header row and its tiers.
CREATE TABLE IF NOT EXISTS tier_ladder (
  id TINYINT NOT NULL PRIMARY KEY,
  version BIGINT NOT NULL,
  qualification_window_months INT NOT NULL,
  updated_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

CREATE TABLE IF NOT EXISTS tiers (
  tier_id VARCHAR(32) NOT NULL PRIMARY KEY,
  name VARCHAR(64) NOT NULL,
  tier_rank INT NOT NULL,
  qualifying_points_threshold BIGINT NOT NULL,
  tier_multiplier_bp BIGINT NOT NULL,
  retention_months INT NOT NULL,
  annual_fee_minor BIGINT NULL,
  annual_fee_currency CHAR(3) NULL,
  UNIQUE KEY tiers_rank (tier_rank)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- The default ladder (backoffice replaces it with SetTierLadder).
INSERT IGNORE INTO tier_ladder (id, version, qualification_window_months, updated_at)
VALUES (1, 1, 12, UTC_TIMESTAMP(6));
INSERT IGNORE INTO tiers (tier_id, name, tier_rank, qualifying_points_threshold, tier_multiplier_bp,
                          retention_months, annual_fee_minor, annual_fee_currency)
VALUES ('silver', 'Silver', 0, 0, 10000, 0, NULL, NULL),
       ('gold', 'Gold', 1, 2000, 12500, 12, 4900, 'EUR'),
       ('platinum', 'Platinum', 2, 10000, 15000, 12, 9900, 'EUR');

CREATE TABLE IF NOT EXISTS tier_changes (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  tier_change_id VARCHAR(40) NOT NULL,
  member_id VARCHAR(40) NOT NULL,
  from_tier_id VARCHAR(32) NOT NULL,
  to_tier_id VARCHAR(32) NOT NULL,
  reason TINYINT NOT NULL,
  qualifying_points BIGINT NOT NULL,
  window_start_time DATETIME(6) NULL,
  window_end_time DATETIME(6) NULL,
  changed_at DATETIME(6) NOT NULL,
  valid_until DATETIME(6) NULL,
  actor_key_id VARCHAR(64) NOT NULL,
  UNIQUE KEY tier_changes_id (tier_change_id),
  KEY tier_changes_member (member_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- A member is referred at most once (unique referred_member_id), so a
-- referral reward can never be granted twice for the same pair.
CREATE TABLE IF NOT EXISTS referrals (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  referral_id VARCHAR(40) NOT NULL,
  referrer_member_id VARCHAR(40) NOT NULL,
  referred_member_id VARCHAR(40) NOT NULL,
  referral_code VARCHAR(16) NOT NULL,
  state TINYINT NOT NULL,
  enrolled_at DATETIME(6) NOT NULL,
  rewarded_at DATETIME(6) NULL,
  reward_points BIGINT NOT NULL DEFAULT 0,
  reward_transfer_id VARCHAR(40) NOT NULL DEFAULT '',
  UNIQUE KEY referrals_id (referral_id),
  UNIQUE KEY referrals_referred (referred_member_id),
  KEY referrals_referrer (referrer_member_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- Idempotency records, kept permanently. member_id lets an erasure wipe the
-- request and response bodies, which hold personal data.
CREATE TABLE IF NOT EXISTS idempotency (
  scope VARCHAR(64) NOT NULL,
  idem_key VARCHAR(128) NOT NULL,
  method VARCHAR(64) NOT NULL,
  fingerprint CHAR(64) NOT NULL,
  request MEDIUMBLOB NULL,
  status_code INT NOT NULL,
  status_message VARCHAR(1000) NOT NULL,
  status_detail VARCHAR(128) NOT NULL,
  response MEDIUMBLOB NULL,
  member_id VARCHAR(40) NOT NULL,
  erased BOOLEAN NOT NULL DEFAULT FALSE,
  completed BOOLEAN NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (scope, idem_key),
  KEY idempotency_member (member_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- Changes, personal-data reads, exports and erasures. An erasure blanks the
-- before/after images of the erased member's events.
CREATE TABLE IF NOT EXISTS audit_events (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  audit_event_id VARCHAR(40) NOT NULL,
  occurred_at DATETIME(6) NOT NULL,
  actor_key_id VARCHAR(64) NOT NULL,
  actor_role TINYINT NOT NULL,
  actor_partner_id VARCHAR(64) NOT NULL,
  action VARCHAR(128) NOT NULL,
  entity_type VARCHAR(32) NOT NULL,
  entity_id VARCHAR(64) NOT NULL,
  member_id VARCHAR(40) NOT NULL,
  before_json MEDIUMTEXT NOT NULL,
  after_json MEDIUMTEXT NOT NULL,
  idempotency_key VARCHAR(128) NOT NULL,
  reason VARCHAR(500) NOT NULL,
  KEY audit_member (member_id, id),
  KEY audit_actor (actor_key_id, id),
  KEY audit_time (occurred_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
