-- Royalties that could break the ledger are repaired (kept in step with
-- migrations/sqlite/0013_royalty_cap.sql). Prices above the default
-- max_royalty_microcredits (10^9) are capped, in algorithms' settings, in the
-- prices published versions keep, in usage records and in ledger postings
-- (both sides of a posting alike, so the ledger still sums to zero); daily
-- rollups whose credits wrapped around (negative) are summed again from the
-- usage records.
UPDATE algorithms SET settings = jsonb_set(settings::jsonb, '{royalty_microcredits}', '1000000000')::text
WHERE (settings::jsonb ->> 'royalty_microcredits') ~ '^[0-9]+$'
  AND (settings::jsonb ->> 'royalty_microcredits')::numeric > 1000000000;

UPDATE versions SET settings = jsonb_set(settings::jsonb, '{royalty_microcredits}', '1000000000')::text
WHERE (settings::jsonb ->> 'royalty_microcredits') ~ '^[0-9]+$'
  AND (settings::jsonb ->> 'royalty_microcredits')::numeric > 1000000000;

UPDATE usage_records SET royalty_microcredits = 1000000000
WHERE royalty_microcredits > 1000000000;

UPDATE ledger_entries SET amount_microcredits = 1000000000
WHERE kind = 'royalty_credit' AND amount_microcredits > 1000000000;

UPDATE ledger_entries SET amount_microcredits = -1000000000
WHERE kind = 'royalty_debit' AND amount_microcredits < -1000000000;

UPDATE usage_daily SET credits = (
    SELECT COALESCE(SUM(r.royalty_microcredits), 0) FROM usage_records r
    WHERE r.started_at / 86400000 = usage_daily.day
      AND r.payer_id = usage_daily.payer_id AND r.caller_id = usage_daily.caller_id
      AND COALESCE(r.algorithm_id, 0) = usage_daily.algorithm_id
      AND r.version = usage_daily.version AND r.via = usage_daily.via
      AND r.status = 'ok' AND r.via <> 'sudo' AND r.royalty_microcredits > 0
      AND r.owner_id IS NOT NULL AND r.owner_id <> r.payer_id
)
WHERE credits < 0;
