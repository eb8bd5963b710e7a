//! The status page's files: one HTML page, its script and its style sheet, compiled into the
//! binary (no CDN, nothing fetched from anywhere but this server).
//!
//! They are served without the token: they hold no data. The page reads the token from the
//! address's fragment (`/#token=...`, which the browser never sends to a server), keeps it in
//! the tab's session storage, and sends it as `Authorization: Bearer` on each `/v1/` request,
//! so the token rules are the same as for `weft` itself and no cookie can be replayed by
//! another site. A strict Content-Security-Policy allows only this server's own script,
//! style and JSON: no inline code, no other origin.

use bytes::Bytes;
use hyper::header::{CACHE_CONTROL, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};

use super::body::{self, ResponseBody};

/// The page's paths.
pub(crate) const INDEX: &str = "/";
pub(crate) const SCRIPT: &str = "/page/app.js";
pub(crate) const STYLE: &str = "/page/style.css";

const INDEX_HTML: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");
const STYLE_CSS: &str = include_str!("page/style.css");

/// What the page may load and talk to: this server only, and no inline code.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                      connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                      form-action 'none'; frame-ancestors 'none'";

/// The file at `path`, if it is one of the page's.
pub(crate) fn file(path: &str) -> Option<Response<ResponseBody>> {
    let (content, content_type) = match path {
        INDEX => (INDEX_HTML, "text/html; charset=utf-8"),
        SCRIPT => (APP_JS, "text/javascript; charset=utf-8"),
        STYLE => (STYLE_CSS, "text/css; charset=utf-8"),
        _ => return None,
    };
    let mut response = body::respond(
        StatusCode::OK,
        HeaderValue::from_static(content_type),
        Bytes::from_static(content.as_bytes()),
    );
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Some(response)
}

/// The page's address for a server at `addr` with `token`: the token rides in the fragment.
pub(crate) fn url(addr: std::net::SocketAddr, token: &str) -> String {
    format!("http://{addr}/#token={token}")
}
