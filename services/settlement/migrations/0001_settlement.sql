-- Settlement: partner directory, contract versions, periods, close
-- accumulations and statements. See docs/adr/0010-settlement.md.
--
-- Partners, contracts, periods and statements are stored as their proto
-- message (`body`, deterministic serialization) next to the columns that are
-- indexed or filtered on; the columns are written from the same message in
-- the same statement, so they never disagree.

-- The ListPartnerSnapshots feed version: global, strictly increasing.
CREATE TABLE IF NOT EXISTS feed_head (
  id TINYINT NOT NULL PRIMARY KEY,
  last_version BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

INSERT IGNORE INTO feed_head (id, last_version) VALUES (1, 0);

CREATE TABLE IF NOT EXISTS partners (
  partner_id VARCHAR(40) NOT NULL PRIMARY KEY,
  status TINYINT NOT NULL,
  business_category TINYINT NOT NULL,
  snapshot_version BIGINT NOT NULL,
  body MEDIUMBLOB NOT NULL,
  UNIQUE KEY partners_snapshot (snapshot_version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- Immutable contract versions: inserted, never updated.
CREATE TABLE IF NOT EXISTS contracts (
  contract_id VARCHAR(40) NOT NULL PRIMARY KEY,
  partner_id VARCHAR(40) NOT NULL,
  version INT NOT NULL,
  effective_from DATETIME(6) NOT NULL,
  body MEDIUMBLOB NOT NULL,
  UNIQUE KEY contracts_partner_version (partner_id, version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

CREATE TABLE IF NOT EXISTS periods (
  period_id VARCHAR(40) NOT NULL PRIMARY KEY,
  name VARCHAR(32) NOT NULL,
  start_time DATETIME(6) NOT NULL,
  end_time DATETIME(6) NOT NULL,
  status TINYINT NOT NULL,
  body MEDIUMBLOB NOT NULL,
  UNIQUE KEY periods_name (name),
  KEY periods_start (start_time, period_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- Points counted by a close so far, per partner and statement line key. A
-- page of the journal is added here in the same transaction that moves the
-- period's processed_sequence, so a crash never counts a transfer twice.
CREATE TABLE IF NOT EXISTS close_points (
  period_id VARCHAR(40) NOT NULL,
  partner_id VARCHAR(40) NOT NULL,
  line_type TINYINT NOT NULL,
  transfer_code TINYINT NOT NULL,
  counterparty_partner_id VARCHAR(40) NOT NULL,
  contract_id VARCHAR(40) NOT NULL,
  points BIGINT NOT NULL,
  transfer_count BIGINT NOT NULL,
  PRIMARY KEY (period_id, partner_id, line_type, transfer_code, counterparty_partner_id, contract_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- The issuer x redeemer matrix of a close, accumulated the same way.
CREATE TABLE IF NOT EXISTS close_matrix (
  period_id VARCHAR(40) NOT NULL,
  issuer_partner_id VARCHAR(40) NOT NULL,
  redeemer_partner_id VARCHAR(40) NOT NULL,
  honoured_points BIGINT NOT NULL,
  reversed_points BIGINT NOT NULL,
  PRIMARY KEY (period_id, issuer_partner_id, redeemer_partner_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

CREATE TABLE IF NOT EXISTS statements (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  statement_id VARCHAR(40) NOT NULL,
  period_id VARCHAR(40) NOT NULL,
  partner_id VARCHAR(40) NOT NULL,
  status TINYINT NOT NULL,
  body MEDIUMBLOB NOT NULL,
  UNIQUE KEY statements_id (statement_id),
  UNIQUE KEY statements_key (period_id, partner_id),
  KEY statements_partner (partner_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

CREATE TABLE IF NOT EXISTS idempotency (
  scope VARCHAR(64) NOT NULL,
  idem_key VARCHAR(128) NOT NULL,
  method VARCHAR(64) NOT NULL,
  fingerprint CHAR(64) NOT NULL,
  request MEDIUMBLOB NULL,
  status_code INT NOT NULL,
  status_message VARCHAR(1000) NOT NULL,
  response MEDIUMBLOB NULL,
  completed BOOLEAN NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (scope, idem_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- Every change: who, when, before and after.
CREATE TABLE IF NOT EXISTS audit_events (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  audit_event_id VARCHAR(40) NOT NULL,
  occurred_at DATETIME(6) NOT NULL,
  actor_key_id VARCHAR(64) NOT NULL,
  entity_type VARCHAR(32) NOT NULL,
  entity_id VARCHAR(64) NOT NULL,
  body MEDIUMBLOB NOT NULL,
  KEY audit_entity (entity_type, entity_id, id),
  KEY audit_actor (actor_key_id, id),
  KEY audit_time (occurred_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
