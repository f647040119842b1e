-- The ledger's schema. See docs/adr/0007-ledger-storage-and-group-commit.md.
-- Re-runnable (IF NOT EXISTS): DDL commits implicitly in MariaDB.

-- One row: the head of the hash-chained journal. Every batch locks it first
-- (SELECT ... FOR UPDATE), which serialises writers across replicas, keeps
-- sequences gap-free, and gives one deterministic lock order.
CREATE TABLE IF NOT EXISTS journal_head (
  id TINYINT NOT NULL PRIMARY KEY,
  last_sequence BIGINT NOT NULL,
  last_hash CHAR(64) NOT NULL
) ENGINE=InnoDB;

INSERT IGNORE INTO journal_head (id, last_sequence, last_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Immutable transfers, one per journal sequence. `body` is the transfer's
-- deterministic protobuf serialization (without hashes); hash =
-- SHA-256(prev_hash bytes || body). The columns duplicate the body's fields
-- for queries; verification checks both.
CREATE TABLE IF NOT EXISTS transfers (
  sequence BIGINT NOT NULL PRIMARY KEY,
  transfer_id VARCHAR(40) NOT NULL,
  code TINYINT NOT NULL,
  debit_account VARCHAR(80) NOT NULL,
  credit_account VARCHAR(80) NOT NULL,
  points BIGINT NOT NULL,
  partner_id VARCHAR(64) NOT NULL,
  member_id VARCHAR(64) NOT NULL,
  reference VARCHAR(128) NOT NULL,
  related_transfer_id VARCHAR(40) NOT NULL,
  hold_id VARCHAR(40) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  body MEDIUMBLOB NOT NULL,
  prev_hash CHAR(64) NOT NULL,
  hash CHAR(64) NOT NULL,
  UNIQUE KEY transfers_id (transfer_id),
  KEY transfers_member (member_id, sequence),
  KEY transfers_partner (partner_id, sequence),
  KEY transfers_debit (debit_account, sequence),
  KEY transfers_credit (credit_account, sequence),
  KEY transfers_created (created_at),
  CONSTRAINT transfers_points_positive CHECK (points > 0)
) ENGINE=InnoDB;

-- How much of an EARN or REDEEM has been reversed (kept apart, because
-- transfers never change).
CREATE TABLE IF NOT EXISTS transfer_reversals (
  transfer_id VARCHAR(40) NOT NULL PRIMARY KEY,
  reversed_points BIGINT NOT NULL
) ENGINE=InnoDB;

-- Balances, credit-normal. A member may never spend more than it has,
-- pending holds included: enforced by the engine and, as a last line, here.
CREATE TABLE IF NOT EXISTS accounts (
  account VARCHAR(80) NOT NULL PRIMARY KEY,
  debits_posted BIGINT NOT NULL DEFAULT 0,
  credits_posted BIGINT NOT NULL DEFAULT 0,
  debits_pending BIGINT NOT NULL DEFAULT 0,
  credits_pending BIGINT NOT NULL DEFAULT 0,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  CONSTRAINT accounts_member_not_negative CHECK (
    account NOT LIKE 'member:%' OR credits_posted - debits_posted - debits_pending >= 0),
  CONSTRAINT accounts_amounts_not_negative CHECK (
    debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0 AND credits_pending >= 0)
) ENGINE=InnoDB;

-- Point lots: who issued a member's points and when they expire. The open
-- lots of a member add up to the member's posted balance.
CREATE TABLE IF NOT EXISTS lots (
  lot_id VARCHAR(40) NOT NULL PRIMARY KEY,
  member_id VARCHAR(64) NOT NULL,
  issuer_partner_id VARCHAR(64) NOT NULL,
  source_transfer_id VARCHAR(40) NOT NULL,
  original_points BIGINT NOT NULL,
  remaining_points BIGINT NOT NULL,
  is_open TINYINT NOT NULL,
  earned_at DATETIME(6) NOT NULL,
  expires_at DATETIME(6) NOT NULL,
  KEY lots_member_open (member_id, is_open, expires_at, lot_id),
  KEY lots_expiry (is_open, expires_at, lot_id),
  CONSTRAINT lots_remaining_in_range CHECK (remaining_points >= 0 AND remaining_points <= original_points)
) ENGINE=InnoDB;

-- Two-phase holds.
CREATE TABLE IF NOT EXISTS holds (
  hold_id VARCHAR(40) NOT NULL PRIMARY KEY,
  member_id VARCHAR(64) NOT NULL,
  partner_id VARCHAR(64) NOT NULL,
  points BIGINT NOT NULL,
  captured_points BIGINT NOT NULL,
  state TINYINT NOT NULL,
  reference VARCHAR(128) NOT NULL,
  metadata BLOB NOT NULL,
  created_at DATETIME(6) NOT NULL,
  expires_at DATETIME(6) NOT NULL,
  closed_at DATETIME(6) NULL,
  hold_transfer_id VARCHAR(40) NOT NULL,
  closing_transfer_id VARCHAR(40) NOT NULL,
  KEY holds_pending (state, expires_at)
) ENGINE=InnoDB;

-- Idempotency records, kept permanently: the original request (to name a
-- differing field on reuse) and the original answer, a refusal included.
CREATE TABLE IF NOT EXISTS idempotency (
  caller VARCHAR(80) NOT NULL,
  idempotency_key VARCHAR(128) NOT NULL,
  method VARCHAR(32) NOT NULL,
  request MEDIUMBLOB NOT NULL,
  status_code INT NOT NULL,
  status_message VARCHAR(1024) NOT NULL,
  response MEDIUMBLOB NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (caller, idempotency_key)
) ENGINE=InnoDB;

-- A partner's receipt earns once, whatever idempotency key it comes with.
CREATE TABLE IF NOT EXISTS earn_receipts (
  partner_id VARCHAR(64) NOT NULL,
  receipt_reference VARCHAR(128) NOT NULL,
  transfer_id VARCHAR(40) NOT NULL,
  PRIMARY KEY (partner_id, receipt_reference)
) ENGINE=InnoDB;
