-- Prepaid point blocks, their draw-down from the ledger journal, and alerts.
-- See docs/adr/0010-settlement.md.

CREATE TABLE IF NOT EXISTS point_blocks (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  point_block_id VARCHAR(40) NOT NULL,
  partner_id VARCHAR(40) NOT NULL,
  points BIGINT NOT NULL,
  body MEDIUMBLOB NOT NULL,
  UNIQUE KEY point_blocks_id (point_block_id),
  KEY point_blocks_partner (partner_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- Per prepaid partner: points bought, points issued (net of earn reversals)
-- up to the 'prepaid' cursor, and the alert level last raised (0 none,
-- 1 low balance, 2 exhausted).
CREATE TABLE IF NOT EXISTS prepaid_balances (
  partner_id VARCHAR(40) NOT NULL PRIMARY KEY,
  purchased_points BIGINT NOT NULL,
  issued_points BIGINT NOT NULL,
  alert_level TINYINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- Durable cursors over the ledger journal; the row is locked while a page is
-- applied, so replicas never apply the same page twice.
CREATE TABLE IF NOT EXISTS feed_cursors (
  name VARCHAR(64) NOT NULL PRIMARY KEY,
  position BIGINT NOT NULL,
  updated_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

INSERT IGNORE INTO feed_cursors (name, position, updated_at) VALUES ('prepaid', 0, UTC_TIMESTAMP(6));

CREATE TABLE IF NOT EXISTS alerts (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  alert_id VARCHAR(40) NOT NULL,
  partner_id VARCHAR(40) NOT NULL,
  kind TINYINT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  body MEDIUMBLOB NOT NULL,
  KEY alerts_partner (partner_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
