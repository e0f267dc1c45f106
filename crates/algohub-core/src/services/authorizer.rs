//! Every permission decision goes through `Authorizer`: it asks the policy
//! engine, counts the decision, turns a refusal into an error naming the
//! rule, and puts on record what must be (refused admin requests, reads
//! that only super powers allowed).

use super::AuditRecorder;
use crate::RequestCtx;
use crate::error::{Code, Error, Result};
use crate::policy::{Action, Decision, PolicyEngine, Resource, Rule};
use std::sync::Arc;

pub struct Authorizer {
    policy: Arc<PolicyEngine>,
    recorder: AuditRecorder,
    /// `algohub_policy_decisions_total` by outcome: [deny, allow].
    decision_counters: [metrics::Counter; 2],
}

impl Authorizer {
    pub(crate) fn new(policy: Arc<PolicyEngine>, recorder: AuditRecorder) -> Self {
        Self {
            policy,
            recorder,
            // Handles registered once (a labelled `counter!` looks its key up
            // in the registry on every use).
            decision_counters: [
                metrics::counter!("algohub_policy_decisions_total", "outcome" => "deny"),
                metrics::counter!("algohub_policy_decisions_total", "outcome" => "allow"),
            ],
        }
    }

    /// Asks the policy engine; a refusal becomes a `Forbidden` error naming the rule.
    pub fn authorize(&self, ctx: &RequestCtx, action: Action, resource: Resource) -> Result<()> {
        self.authorize_by(ctx, action, resource).map(drop)
    }

    /// As `authorize`, answering which rule allowed the action.
    pub fn authorize_by(
        &self,
        ctx: &RequestCtx,
        action: Action,
        resource: Resource,
    ) -> Result<Rule> {
        let d = self.decide(ctx, action, resource);
        if d.allow {
            return Ok(d.rule);
        }
        // Refused admin requests, and whatever an impersonation session
        // was refused for its limits, are on record as denials.
        if d.rule == Rule::ImpersonationLimit
            || matches!(
                action,
                Action::AdminUsersManage | Action::AdminUsersRead | Action::AdminOrgTypesManage
            )
        {
            self.recorder.audit_denied(ctx, action, d.rule);
        }
        let code = if d.rule == Rule::KeyScope {
            Code::KeyScope
        } else {
            Code::Forbidden
        };
        Err(Error::new(
            code,
            format!(
                "not allowed to {} (decided by rule {})",
                action.as_str(),
                d.rule.as_str()
            ),
        ))
    }

    pub fn can(&self, ctx: &RequestCtx, action: Action, resource: Resource) -> bool {
        self.decide(ctx, action, resource).allow
    }

    /// One decision, counted; a read that only super powers allowed is audited.
    fn decide(&self, ctx: &RequestCtx, action: Action, resource: Resource) -> Decision {
        let d = self.policy.decide(&ctx.principal, action, resource);
        self.decision_counters[usize::from(d.allow)].increment(1);
        if d.rule == Rule::SuperPowers {
            self.recorder.audit_elevated_read(ctx, action, resource);
        }
        d
    }
}
