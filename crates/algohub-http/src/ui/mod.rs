//! The pages: server-rendered HTML from askama templates compiled into the
//! binary (`templates/`), one stylesheet (`assets/`) served under a
//! content-hashed name with a long cache life, and a strict
//! Content-Security-Policy (no inline script or style). Pages read without
//! JavaScript; their forms post to page routes here, which call the same
//! services as the JSON API. See `../shared/design/UI.md`.
//!
//! Signed out, `/` is the sign-in page; `/login` signs in (the form posts
//! back to it; a cross-site post is refused) and `/logout` signs out (with
//! the session's CSRF token as a form field).

mod assets;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Caller;
use crate::native::signin::{Attempt, sign_in};
use crate::ops::RawErrorBody;
use crate::routes::Routes;
use algohub_core::audit::CredentialKind;
use algohub_core::model::{AppSort, Page};
use askama::Template;
use axum::extract::{Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

pub use assets::Assets;

/// The Content-Security-Policy of every page: its own files only, no inline
/// script or style, never in a frame, forms post only here.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A rendered page with the security headers every page carries; a 4xx
/// keeps its HTML body (the JSON error net leaves it).
fn page(status: StatusCode, t: &impl Template) -> Response {
    let html = match t.render() {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            return ApiError::new(algohub_core::Code::Internal, "the page failed to render")
                .into_response();
        }
    };
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status.is_client_error() {
        resp.extensions_mut().insert(RawErrorBody);
    }
    resp
}

/// What the shell shows around a signed-in page.
struct Shell {
    account: String,
    csrf_token: String,
}

/// A signed-in person on a page: the request context of their browser
/// session, and the shell. `None` when the request has no live session
/// cookie (the page then offers to sign in).
struct Signed(Option<(algohub_core::RequestCtx, Shell)>);

impl FromRequestParts<AppState> for Signed {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        let Some(token) = crate::cookie::token(&parts.headers, &s.base_url).map(str::to_string)
        else {
            return Ok(Signed(None));
        };
        // Pages are read with GET; an API key in Authorization is no browser
        // session.
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(Signed(None));
        }
        let Ok(Caller(ctx)) = Caller::from_request_parts(parts, s).await else {
            return Ok(Signed(None));
        };
        if ctx.audit.credential != CredentialKind::Cookie {
            return Ok(Signed(None));
        }
        let Ok(account) = s.hub.store.get_account(ctx.account_id()).await else {
            return Ok(Signed(None));
        };
        let account = account.name;
        let shell = Shell {
            account,
            csrf_token: crate::cookie::csrf_token(&token),
        };
        Ok(Signed(Some((ctx, shell))))
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    assets: &'a Assets,
    login: String,
    error: Option<String>,
}

/// An algorithm, app or organization as the dashboard lists it.
struct Entry {
    owner: String,
    name: String,
    label: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage<'a> {
    assets: &'a Assets,
    shell: Shell,
    algorithms: Vec<Entry>,
    apps: Vec<Entry>,
    orgs: Vec<Entry>,
}

fn login_page(s: &AppState, status: StatusCode, login: String, error: Option<String>) -> Response {
    page(
        status,
        &LoginPage {
            assets: &s.assets,
            login,
            error,
        },
    )
}

/// `/`: the dashboard, or the sign-in page when signed out.
async fn home(State(s): State<AppState>, Signed(signed): Signed) -> Response {
    let Some((ctx, shell)) = signed else {
        return login_page(&s, StatusCode::OK, String::new(), None);
    };
    match dashboard(&s, &ctx, shell).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn dashboard(
    s: &AppState,
    ctx: &algohub_core::RequestCtx,
    shell: Shell,
) -> Result<Response, ApiError> {
    let me = shell.account.clone();
    let algorithms = s
        .hub
        .algorithms
        .list_algorithms(ctx, &me)
        .await?
        .into_iter()
        .map(|a| Entry {
            label: a.details["label"].as_str().unwrap_or_default().to_string(),
            owner: a.owner_name,
            name: a.name,
        })
        .collect();
    let apps = s
        .hub
        .apps
        .list_apps(ctx, &me, None, AppSort::NameAsc, 100, 0)
        .await?
        .into_iter()
        .map(|a| Entry {
            owner: a.owner_name,
            name: a.name,
            label: a.description,
        })
        .collect();
    let orgs = s
        .hub
        .orgs
        .own_orgs(
            ctx,
            &Page {
                limit: 100,
                marker: None,
            },
        )
        .await?
        .into_iter()
        .map(|o| Entry {
            owner: String::new(),
            name: o.name,
            label: o.label,
        })
        .collect();
    Ok(page(
        StatusCode::OK,
        &DashboardPage {
            assets: &s.assets,
            shell,
            algorithms,
            apps,
            orgs,
        },
    ))
}

/// `/login` (GET): the sign-in page; signed in, the dashboard is at `/`.
async fn login_form(State(s): State<AppState>, Signed(signed): Signed) -> Response {
    if signed.is_some() {
        return Redirect::to("/").into_response();
    }
    login_page(&s, StatusCode::OK, String::new(), None)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
}

/// `/login` (POST): signs in and goes to the dashboard, or shows the form
/// again with what went wrong (and the name as typed).
async fn login_submit(
    State(s): State<AppState>,
    parts: Parts,
    Form(f): Form<LoginForm>,
) -> Response {
    let login = f.login.clone();
    let attempt = Attempt::new(&parts, f.login, f.password);
    match sign_in(&s, &parts, attempt, |_, _| {
        Redirect::to("/").into_response()
    })
    .await
    {
        // A redirect after a form post (303): the browser follows with a GET.
        Ok(resp) => resp,
        Err(ApiError(e)) => {
            let status = crate::error::status_of(e.kind());
            login_page(&s, status, login, Some(sentence(&e.message)))
        }
    }
}

/// A message as a page shows it: a sentence, with a capital.
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[derive(Deserialize)]
struct LogoutForm {
    #[serde(default)]
    csrf_token: String,
}

/// `/logout` (POST, with the session's CSRF token): signs out and goes to
/// the sign-in page.
async fn logout(
    State(s): State<AppState>,
    mut parts: Parts,
    Form(f): Form<LogoutForm>,
) -> Response {
    let Some(token) = crate::cookie::token(&parts.headers, &s.base_url).map(str::to_string) else {
        return Redirect::to("/login").into_response();
    };
    if let Err(e) = crate::cookie::check(&parts, &s.base_url, &token, Some(&f.csrf_token)) {
        return e.into_response();
    }
    // The form's token passed: authenticate as a safe request would.
    parts.headers.insert(
        crate::cookie::CSRF_HEADER,
        HeaderValue::from_str(&crate::cookie::csrf_token(&token))
            .unwrap_or_else(|_| HeaderValue::from_static("")),
    );
    let mut resp = Redirect::to("/login").into_response();
    if let Ok(Caller(ctx)) = Caller::from_request_parts(&mut parts, &s).await
        && let Err(e) = s.hub.sessions.stop_session(&ctx).await
    {
        return ApiError::from(e).into_response();
    }
    resp.headers_mut()
        .append(header::SET_COOKIE, crate::cookie::clear(&s.base_url));
    resp
}

/// The page routes (not in the OpenAPI document: they answer HTML).
pub fn routes(r: Routes) -> Routes {
    r.page("/", get(home))
        .page("/login", get(login_form).post(login_submit))
        .page("/logout", post(logout))
        .page("/assets/{name}", get(assets::serve))
}
