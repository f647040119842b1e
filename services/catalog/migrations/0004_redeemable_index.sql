-- ListRedeemableRewards walks ACTIVE rewards by price.
ALTER TABLE rewards ADD INDEX IF NOT EXISTS rewards_price (state, points_price, reward_id);
