-- A cluster admin's per-account override of the storage quota for data files
-- (MiB; NULL: the cluster's data_quota_mib).
ALTER TABLE accounts ADD COLUMN storage_quota_mib BIGINT;
