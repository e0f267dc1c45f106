-- One pending invitation per invitee and organization, whatever races: a
-- partial unique index for invitations by account and one for invitations
-- by email (NULLs never clash, so each covers its own kind).
--
-- Duplicates made before this index (concurrent identical invitations) are
-- closed first: the oldest stays pending, the others are rescinded.
UPDATE invitations SET status = 'rescinded', decided_at = created_at
WHERE status = 'pending' AND invitee_user_id IS NOT NULL AND EXISTS (
    SELECT 1 FROM invitations AS o
    WHERE o.status = 'pending' AND o.org_id = invitations.org_id
      AND o.invitee_user_id = invitations.invitee_user_id
      AND (o.created_at < invitations.created_at
           OR (o.created_at = invitations.created_at AND o.id < invitations.id))
);

UPDATE invitations SET status = 'rescinded', decided_at = created_at
WHERE status = 'pending' AND invitee_email IS NOT NULL AND EXISTS (
    SELECT 1 FROM invitations AS o
    WHERE o.status = 'pending' AND o.org_id = invitations.org_id
      AND o.invitee_email = invitations.invitee_email
      AND (o.created_at < invitations.created_at
           OR (o.created_at = invitations.created_at AND o.id < invitations.id))
);

CREATE UNIQUE INDEX invitations_pending_user_key
    ON invitations (org_id, invitee_user_id) WHERE status = 'pending';
CREATE UNIQUE INDEX invitations_pending_email_key
    ON invitations (org_id, invitee_email) WHERE status = 'pending';
