//! API tests: one integration binary (see ARCHITECTURE.md, Tests).
//!
//! Every case runs on SQLite and on PostgreSQL (`sqlite::…` and `postgres::…`),
//! each run on fresh databases dropped when it ends; see `harness::api_tests!`.
//! `.ci/run` fails when the PostgreSQL run executed fewer tests than the SQLite one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod admin_users;
mod algorithms;
mod apps_teams;
mod audit;
mod billing;
mod call_tokens;
mod calls;
mod cli;
mod credits;
mod data;
mod defects;
mod durability;
mod elevated;
mod governance;
mod guarantees;
mod hardening;
mod harness;
mod impersonated_calls;
mod index_and_transfer;
mod invitations;
mod journal;
mod keys;
mod limits;
mod matrix;
mod metrics;
mod multinode;
mod nodes;
mod notifications;
mod pages;
mod promises;
mod promises_running;
mod races;
mod sharing;
mod signin;
mod source;
mod startup;
mod support;

harness::api_tests! {
    both {
        accounts:
            users_lifecycle_and_tombstones,
            bad_inputs_get_4xx_and_change_nothing,
            authorization_header_forms_and_refusals,
            user_listing_pages_with_markers,
            organizations_types_members_and_last_admin,
            max_orgs_per_user_is_enforced,
            org_types_admin_routes;
        admin_users:
            search_and_page,
            export_streams_every_account_as_csv,
            roles_and_suspension,
            deletion_returns_a_receipt_and_revokes_everything,
            invite_codes;
        algorithms:
            create_compile_publish_and_versions,
            account_and_org_algorithm_lists,
            org_versions_need_approval,
            more_than_a_thousand_builds;
        apps_teams:
            apps_search_sort_pin_duplicate_delete,
            transfer_personal_app_to_org,
            teams_seats_and_app_grants;
        audit:
            audit_trail,
            audit_verify_command,
            dropped_refusal_records_are_summarized,
            governance_changes_keep_old_and_new_values;
        billing:
            consolidated_billing_and_org_reports,
            sudo_calls_run_as_the_owner_and_are_not_attributed_to_it,
            refused_calls_are_metered_and_account_errors_are_listed,
            org_and_member_key_calls_are_recorded_as_such;
        credits:
            royalties_are_fixed_per_version_capped_and_repaired,
            calls_need_credits_above_the_floor;
        call_tokens:
            algorithms_use_the_data_api_with_their_call_token,
            wasm_algorithms_read_data_as_the_call_acts;
        impersonated_calls:
            wasm_data_acts_under_impersonation_are_audited,
            void_call_data_acts_keep_the_request_and_the_admin;
        calls:
            calls_through_the_wasm_runtime,
            calls_through_the_http_runtime,
            #[cfg_attr(not(algohub_c_examples), ignore = "ALGOHUB_EXAMPLE_WASM_DIR (the C examples, built by examples/build.sh) was not set when the tests were built")]
            wordcount_example_written_in_c;
        cli:
            export_users_as_csv;
        data:
            files_directories_and_acls,
            org_collections_follow_roles_and_key_scopes,
            file_names_have_one_spelling;
        defects:
            user_routes_take_the_users_uuid;
        hardening:
            deep_json_results_are_algorithm_errors,
            impersonation_keeps_to_its_limits,
            keys_an_admin_mints_are_impersonations,
            data_files_keep_to_the_storage_quota;
        durability:
            usage_records_survive_kill_9;
        signin:
            password_sign_in_sets_a_session_cookie_and_signs_out,
            wrong_names_and_passwords_get_one_answer;
        pages:
            pages_sign_in_show_the_dashboard_and_sign_out;
        elevated:
            impersonating_admins_is_a_setting,
            super_powers,
            impersonation;
        governance:
            work_limits_and_metering,
            metering_with_fsync;
        index_and_transfer:
            a_key_made_by_the_command_line_works_at_once,
            algorithms_and_sessions_of_one_node_work_at_once_on_another,
            a_transferred_app_takes_its_algorithms_along;
        invitations:
            invite_by_name_accept_records_terms,
            invite_by_email_uses_a_single_use_token_and_reveals_nothing,
            decline_rescind_and_expire,
            membership_expiry_removes_the_grant_with_its_event,
            emails_go_out_once_and_only_for_live_invitations,
            unsent_invitation_emails_lose_their_token_when_the_invitation_closes;
        journal:
            journal_files_rotate_and_go_only_once_stored,
            a_journal_left_behind_is_loaded_and_removed,
            a_running_node_loads_a_journal_left_behind;
        keys:
            user_keys_are_shown_once_and_scoped,
            key_last_use_is_recorded,
            org_keys_and_member_keys,
            explain_and_who_can,
            cluster_admin_issues_keys_for_users,
            org_keys_wait_for_an_active_admin;
        limits:
            failed_wasm_calls_report_the_fuel_they_used,
            timeout_and_fuel_are_cluster_settings_an_algorithm_may_lower,
            an_algorithms_timeout_cap_is_its_calls_deadline;
        metrics:
            calls_and_errors_are_counted_per_algorithm_with_histograms;
        matrix:
            route_role_matrix;
        multinode:
            two_nodes;
        notifications:
            notifications;
        promises:
            call_tokens_end_when_an_account_of_the_call_is_suspended,
            impersonation_cannot_manage_org_members_or_make_sudo_calls,
            sudo_calls_are_on_the_audit_trail;
        promises_running:
            wasm_fuel_and_memory_limits,
            authors_approve_their_own_versions_where_the_org_allows_it,
            a_declined_invitation_sends_no_email,
            http_upstreams_may_not_reach_internal_addresses_by_default;
        source:
            source_follows_visibility_rights_and_super_powers,
            http_definitions_show_no_secrets;
        guarantees:
            the_last_cluster_admin_stays,
            calls_are_refused_once_the_usage_backlog_is_full,
            an_admins_suspension_ends_their_impersonation_sessions;
        races:
            leaving_an_org_is_its_own_decision,
            identical_invitations_at_once_leave_one;
        sharing:
            a_flood_from_one_person_leaves_room_for_others,
            guests_that_fill_their_memory_keep_the_node_within_its_budget;
    }
    postgres_only {
        durability:
            work_limit_holds_across_three_nodes;
        guarantees:
            admins_acting_on_each_other_at_once_leave_one,
            call_tokens_are_checked_on_another_node;
        races:
            a_publish_racing_a_transfer_waits_for_approval,
            transfers_of_one_app_at_once_move_it_whole,
            an_algorithm_put_into_an_app_during_its_transfer_goes_with_it,
            refused_calls_share_their_store_reads;
    }
}
