-- Keys a cluster admin creates for someone else ("minted"): the reason the
-- admin gave. A key with a reason acts as an impersonation by its creator
-- (every request on record, held to the impersonation limits), expires, and
-- stops working when its creator is no longer an active cluster admin.
ALTER TABLE api_keys ADD COLUMN minted_reason TEXT;
