-- Disputes of statement lines; an accepted one carries an adjustment into
-- the partner's statement of a later period. See docs/adr/0010-settlement.md.
CREATE TABLE IF NOT EXISTS disputes (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  dispute_id VARCHAR(40) NOT NULL,
  statement_id VARCHAR(40) NOT NULL,
  partner_id VARCHAR(40) NOT NULL,
  status TINYINT NOT NULL,
  adjustment_period_id VARCHAR(40) NOT NULL,
  body MEDIUMBLOB NOT NULL,
  UNIQUE KEY disputes_id (dispute_id),
  KEY disputes_statement (statement_id, id),
  KEY disputes_partner (partner_id, id),
  KEY disputes_adjustment (adjustment_period_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
