-- Campaigns (earn rules), their versioned rule set and budget leases. See
-- docs/adr/0011-catalog.md.

-- One row: the earn-rules version. Every change to the set of ACTIVE
-- campaigns locks it (FOR UPDATE) and takes the next number in the same
-- transaction, so a reader polling "version > N" never misses a change.
CREATE TABLE IF NOT EXISTS earn_rules_head (
  id TINYINT NOT NULL PRIMARY KEY,
  version BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

INSERT IGNORE INTO earn_rules_head (id, version) VALUES (1, 1);

-- A campaign. `body` is the serialized catalog.v1.Campaign; the columns are
-- authoritative for what queries filter on and conditional updates change.
-- partner_list is ",a,b," (or "" = any partner) for LOCATE() filtering.
CREATE TABLE IF NOT EXISTS campaigns (
  campaign_id VARCHAR(40) NOT NULL PRIMARY KEY,
  state TINYINT NOT NULL,
  has_bonus BOOLEAN NOT NULL,
  partner_list VARCHAR(4000) NOT NULL,
  end_time DATETIME(6) NULL,
  budget_points BIGINT NOT NULL,
  -- Never above budget_points when a budget is set: every lease is a
  -- conditional UPDATE ... WHERE budget_allocated + ? <= budget_points.
  budget_allocated BIGINT NOT NULL DEFAULT 0,
  body MEDIUMBLOB NOT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  version BIGINT NOT NULL,
  KEY campaigns_state (state, campaign_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

CREATE TABLE IF NOT EXISTS campaign_budget_leases (
  campaign_budget_lease_id VARCHAR(40) NOT NULL PRIMARY KEY,
  campaign_id VARCHAR(40) NOT NULL,
  holder VARCHAR(128) NOT NULL,
  granted_points BIGINT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  closed_at DATETIME(6) NULL,
  used_points BIGINT NOT NULL DEFAULT 0,
  returned_points BIGINT NOT NULL DEFAULT 0,
  KEY leases_campaign (campaign_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
