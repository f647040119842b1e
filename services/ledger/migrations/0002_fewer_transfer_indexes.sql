-- Every transfer on a partner account (issuance:P, redemption:P, breakage:P)
-- carries partner_id = P, and every transfer on member:M carries member_id = M,
-- so account history is served by transfers_partner / transfers_member.
-- The extra indexes cost an index update per transfer on the write path.
ALTER TABLE transfers DROP INDEX IF EXISTS transfers_debit;
ALTER TABLE transfers DROP INDEX IF EXISTS transfers_credit;
ALTER TABLE transfers DROP INDEX IF EXISTS transfers_created;
