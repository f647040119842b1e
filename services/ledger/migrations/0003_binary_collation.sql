-- Ids, account names and references compare byte for byte: 'member:bob' is
-- not 'member:Bob', and 'R1 ' is not 'R1'. Without a pinned collation a
-- table inherits the server's default (often case-insensitive, PAD SPACE),
-- and a lookup could return another key's row.
ALTER TABLE journal_head CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin;
ALTER TABLE transfers CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin;
ALTER TABLE transfer_reversals CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin;
ALTER TABLE accounts CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin;
ALTER TABLE lots CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin;
ALTER TABLE holds CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin;
ALTER TABLE idempotency CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin;
ALTER TABLE earn_receipts CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin;
