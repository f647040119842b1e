-- Partner and staff credentials: only SHA-256(secret) is stored
-- (docs/adr/0005-api-key-format.md). See docs/adr/0010-settlement.md.
CREATE TABLE IF NOT EXISTS api_keys (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  key_id VARCHAR(32) NOT NULL,
  key_hash CHAR(64) NOT NULL,
  partner_id VARCHAR(40) NOT NULL,
  role TINYINT NOT NULL,
  body MEDIUMBLOB NOT NULL,
  UNIQUE KEY api_keys_id (key_id),
  UNIQUE KEY api_keys_hash (key_hash),
  KEY api_keys_partner (partner_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
