-- The state before an update or delete, so the feeds can tell a peer that
-- could see a listing that it no longer can (withdrawn).
ALTER TABLE changes ADD COLUMN prev_doc TEXT;
