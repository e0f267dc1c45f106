//! The per-request HTTP metrics (`algohub_http_requests_total` by method,
//! route and status, `algohub_http_request_duration_seconds` by method and
//! route), with their handles kept per route: a request looks its route up
//! once instead of building labelled keys (five label strings) and finding
//! them in the recorder's registry twice.

use axum::http::Method;
use metrics::{Counter, Histogram, SharedString};
use parking_lot::RwLock;
use rustc_hash::FxHashMap;

/// One method on one route: its duration histogram and a counter per status.
struct RouteMethod {
    method: &'static str,
    duration: Histogram,
    statuses: Vec<(u16, Counter)>,
}

/// The handles, by route (the matched route pattern, or `unmatched`).
#[derive(Default)]
pub struct RequestMetrics {
    routes: RwLock<FxHashMap<String, Vec<RouteMethod>>>,
}

impl RequestMetrics {
    /// Counts one request and records its duration.
    pub fn observe(&self, method: &Method, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        {
            let routes = self.routes.read();
            if let Some(entry) = routes
                .get(route)
                .and_then(|ms| ms.iter().find(|m| m.method == method))
                && let Some((_, counter)) = entry.statuses.iter().find(|(s, _)| *s == status)
            {
                counter.increment(1);
                entry.duration.record(seconds);
                return;
            }
        }
        // First request of this route, method and status: register it.
        let mut routes = self.routes.write();
        let methods = routes.entry(route.to_string()).or_default();
        let at = match methods.iter().position(|m| m.method == method) {
            Some(at) => at,
            None => {
                methods.push(RouteMethod {
                    method,
                    duration: metrics::histogram!(
                        "algohub_http_request_duration_seconds",
                        "method" => method,
                        "route" => SharedString::from(route.to_string()),
                    ),
                    statuses: Vec::new(),
                });
                methods.len() - 1
            }
        };
        let entry = &mut methods[at];
        let counter = match entry.statuses.iter().find(|(s, _)| *s == status) {
            Some((_, c)) => c.clone(),
            None => {
                let c = metrics::counter!(
                    "algohub_http_requests_total",
                    "method" => method,
                    "route" => route.to_string(),
                    "status" => status.to_string(),
                );
                entry.statuses.push((status, c.clone()));
                c
            }
        };
        counter.increment(1);
        entry.duration.record(seconds);
    }
}

/// The method as a label: the standard ones by name, any other as `OTHER`
/// (a client inventing methods must not grow the metrics without bound).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}
