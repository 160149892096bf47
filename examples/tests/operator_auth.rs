//! The operator API's authentication and authorization over real sockets: every route of the
//! OpenAPI document refuses anonymous callers and too small a role; the routes outside it
//! (dashboard page, assets, live feed, metrics) explicitly; login, logout, wrong passwords,
//! the failed-login limit, session expiry on an injected clock, CSRF, the Host allow-list, API
//! keys and accounts, the first-run admin, the header timeout and the body limit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ocpp_examples::backend::api::{access, ROUTES};
use ocpp_examples::backend::auth::{Access, Role, Secret};
use ocpp_examples::backend::run::{start, CentralArgs, RunningCentral};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "support/postgres.rs"]
mod postgres;
use postgres::postgres_database;
#[path = "support/api.rs"]
mod api;
use api::Api;

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("auth.db").display())
}

async fn central(dir: &tempfile::TempDir) -> RunningCentral {
    start(&CentralArgs::with_database(sqlite_url(dir)).ephemeral())
        .await
        .expect("central system starts")
}

/// A path of the document with its parameters filled in.
fn concrete(path: &str) -> String {
    path.replace("{id}", "NOPE-1")
        .replace("{action}", "ClearCache")
        .replace("{id_tag}", "NOPE-TAG")
        .replace("{username}", "nobody")
}

/// Sends one request and returns its status (without reading a streamed body).
async fn status_of(
    client: &reqwest::Client,
    method: &Method,
    url: &str,
    key: Option<&str>,
) -> StatusCode {
    let mut r = client.request(method.clone(), url);
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    if *method == Method::POST || *method == Method::PUT {
        r = r.json(&json!({}));
    }
    let resp = r.send().await.expect("HTTP request");
    resp.status()
}

async fn key(central: &RunningCentral, role: Role) -> String {
    central
        .auth()
        .create_api_key("tests", role, "tests")
        .await
        .expect("key")
        .1
        .expose()
        .to_owned()
}

#[tokio::test]
async fn every_route_refuses_anonymous_callers_and_smaller_roles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = central(&dir).await;
    let base = format!("http://{}", central.http_addr());
    let client = reqwest::Client::new();
    let keys = [
        (Role::Viewer, key(&central, Role::Viewer).await),
        (Role::Operator, key(&central, Role::Operator).await),
        (Role::Admin, key(&central, Role::Admin).await),
    ];
    let doc: Value = client
        .get(format!("{base}/api/openapi.json"))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    let paths = doc["paths"].as_object().expect("paths");
    let pages = [
        "/",
        "/dashboard.js",
        "/dashboard.css",
        "/login.js",
        "/security-events.js",
        "/sites.js",
        "/certificates.js",
        "/reservations.js",
        "/firmware.js",
        "/device-model.js",
        "/messages.js",
        "/streams.js",
        "/tariffs.js",
        "/analytics.js",
        "/site-analytics.js",
        "/accounts.js",
        "/app",
        "/app/app.js",
        "/app/app.css",
        "/api/openapi.json",
    ];
    let mut checked = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let rule = access(method.as_str(), path)
                .unwrap_or_else(|| panic!("{method} {path} has no line in api::ROUTES"));
            let url = format!("{base}{}", concrete(path));
            let anonymous = status_of(&client, &method, &url, None).await;
            if rule == Access::Driver {
                // Driver routes (accounts_api.rs): a driver session only; no operator key
                // opens them.
                assert_eq!(
                    anonymous,
                    StatusCode::UNAUTHORIZED,
                    "anonymous {method} {path}"
                );
                let schemes: Vec<&str> = op["security"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{method} {path} declares no security"))
                    .iter()
                    .flat_map(|r| r.as_object().into_iter().flat_map(|o| o.keys()))
                    .map(String::as_str)
                    .collect();
                assert_eq!(schemes, ["driver_session"], "{method} {path}");
                for (role, k) in &keys {
                    let got = status_of(&client, &method, &url, Some(k)).await;
                    assert_eq!(got, StatusCode::UNAUTHORIZED, "{role:?} {method} {path}");
                }
                checked += 1;
                continue;
            }
            let Access::Role(need) = rule else {
                // Chargers download firmware and upload logs through capability URLs (a
                // random token in the path, firmware_api.rs): public, and a token nobody
                // was given finds nothing.
                let capability =
                    path.starts_with("/firmware/{token}") || path.starts_with("/uploads/{token}");
                if capability {
                    assert_eq!(
                        anonymous,
                        StatusCode::NOT_FOUND,
                        "anonymous {method} {path}"
                    );
                }
                assert!(
                    capability
                        || [
                            ("GET", "/health"),
                            ("POST", "/api/login"),
                            // Drivers sign up and in; the payment provider's events are
                            // authenticated by their HMAC signature (accounts_api.rs).
                            ("POST", "/api/driver/signup"),
                            ("POST", "/api/driver/login"),
                            ("POST", "/api/payments/webhook"),
                        ]
                        .contains(&(method.as_str(), path.as_str())),
                    "{method} {path} is public"
                );
                assert!(op.get("security").is_none(), "{method} {path}: {op}");
                continue;
            };
            assert_eq!(
                anonymous,
                StatusCode::UNAUTHORIZED,
                "anonymous {method} {path}"
            );
            // The document says so.
            let schemes: Vec<&str> = op["security"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path} declares no security"))
                .iter()
                .flat_map(|r| r.as_object().into_iter().flat_map(|o| o.keys()))
                .map(String::as_str)
                .collect();
            assert_eq!(schemes, ["api_key", "session"], "{method} {path}");
            assert!(op["responses"]["401"].is_object() && op["responses"]["403"].is_object());
            for (role, k) in &keys {
                let got = status_of(&client, &method, &url, Some(k)).await;
                if *role < need {
                    assert_eq!(got, StatusCode::FORBIDDEN, "{role:?} {method} {path}");
                } else {
                    assert!(
                        got != StatusCode::UNAUTHORIZED && got != StatusCode::FORBIDDEN,
                        "{role:?} {method} {path}: {got}"
                    );
                }
            }
            checked += 1;
        }
    }
    let guarded = ROUTES
        .iter()
        .filter(|(_, p, a)| !pages.contains(p) && *a != Access::Public)
        .count();
    assert_eq!(
        checked, guarded,
        "every guarded route of the table was tried"
    );

    // What the task names per role (so a weaker table fails here).
    let admin = [
        ("POST", "/api/chargers"),
        ("POST", "/api/tokens"),
        ("DELETE", "/api/tokens/{id_tag}"),
        ("POST", "/api/chargers/{id}/call/{action}"),
        ("GET", "/api/users"),
        ("POST", "/api/users"),
        ("PUT", "/api/users/{username}"),
        ("DELETE", "/api/users/{username}"),
        ("GET", "/api/keys"),
        ("POST", "/api/keys"),
        ("DELETE", "/api/keys/{id}"),
        ("POST", "/api/chargers/{id}/password"),
    ];
    let operator = [
        ("POST", "/api/chargers/{id}/start"),
        ("POST", "/api/chargers/{id}/stop"),
        ("POST", "/api/chargers/{id}/reset"),
        ("GET", "/api/chargers/{id}/configuration"),
        ("POST", "/api/chargers/{id}/configuration"),
        ("POST", "/api/chargers/{id}/variables/get"),
        ("POST", "/api/chargers/{id}/variables/set"),
    ];
    for (m, p) in admin {
        assert_eq!(access(m, p), Some(Access::Role(Role::Admin)), "{m} {p}");
    }
    for (m, p) in operator {
        assert_eq!(access(m, p), Some(Access::Role(Role::Operator)), "{m} {p}");
    }
    // Every line of the table is a route of the document or one of the pages below.
    for (m, p, _) in ROUTES {
        assert!(
            pages.contains(p) || doc["paths"][*p][m.to_lowercase()].is_object(),
            "{m} {p} is not in the OpenAPI document"
        );
    }

    // Outside the document: the page is the login page until signed in; the assets and the
    // document are public; the live feed and /metrics need credentials.
    let page = client.get(format!("{base}/")).send().await.expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let page = page.text().await.expect("text");
    assert!(
        page.contains("id=\"login\"") && !page.contains("dashboard.js"),
        "{page}"
    );
    for asset in [
        "/dashboard.js",
        "/dashboard.css",
        "/login.js",
        "/security-events.js",
        "/sites.js",
        "/device-model.js",
        "/site-analytics.js",
        "/accounts.js",
    ] {
        let r = client
            .get(format!("{base}{asset}"))
            .send()
            .await
            .expect("asset");
        assert_eq!(r.status(), StatusCode::OK, "{asset}");
    }
    let viewer = Api::with_key(central.http_addr(), &keys[0].1);
    assert!(viewer.text("/").await.contains("dashboard.js"));
    assert!(viewer.text("/metrics").await.contains("ocpp_"));
    let feed = client
        .get(format!("{base}/api/events"))
        .bearer_auth(&keys[0].1)
        .send()
        .await
        .expect("feed");
    assert_eq!(feed.status(), StatusCode::OK);
    assert_eq!(feed.headers()["content-type"], "text/event-stream");
    drop(feed);
    // The security schemes are declared.
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["api_key"]["scheme"], "bearer");
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["session"]["name"], "ocpp_session");
    central.shutdown().await.expect("shutdown");
}

/// A browser-like client: the session cookie and CSRF token from a login.
struct Browser {
    client: reqwest::Client,
    base: String,
    origin: String,
    cookie: String,
    csrf: String,
}

async fn login(central: &RunningCentral, user: &str, password: &str) -> Browser {
    let base = format!("http://{}", central.http_addr());
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/api/login"))
        .header("origin", &base)
        .json(&json!({ "username": user, "password": password }))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::OK, "login of {user}");
    let set = r.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(!set.contains("Secure"), "plain http: {set}");
    let cookie = set.split(';').next().expect("name=value").to_owned();
    let me: Value = r.json().await.expect("json");
    assert_eq!(me["username"], user);
    assert_eq!(me["via"], "session");
    Browser {
        csrf: me["csrfToken"].as_str().expect("csrf").to_owned(),
        client,
        origin: base.clone(),
        base,
        cookie,
    }
}

impl Browser {
    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
    }

    /// A same-origin request with the CSRF token, as the dashboard sends it.
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut r = self
            .req(method, path)
            .header("origin", &self.origin)
            .header("x-csrf-token", &self.csrf);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("request");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn login_logout_wrong_password_and_the_first_run_admin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = central(&dir).await;
    let password = central
        .initial_admin_password()
        .expect("first run: random admin password")
        .expose()
        .to_owned();
    assert!(password.len() >= 12);
    let anon = Api::new(central.http_addr());
    let (status, body) = anon
        .post(
            "/api/login",
            json!({ "username": "admin", "password": "wrong-password-1" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "wrong_credentials");
    let (status, body) = anon
        .post(
            "/api/login",
            json!({ "username": "nobody", "password": password }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    let b = login(&central, "admin", &password).await;
    let (status, me) = b.send(Method::GET, "/api/me", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["role"], "admin");
    let page = b
        .req(Method::GET, "/")
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("text");
    assert!(page.contains("dashboard.js"), "signed in: the dashboard");
    let (status, _) = b.send(Method::POST, "/api/logout", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = b.send(Method::GET, "/api/me", None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the session ended at logout"
    );
    let page = b
        .req(Method::GET, "/")
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("text");
    assert!(page.contains("id=\"login\""), "signed out: the login page");
    // A tampered cookie is nobody.
    let forged = Browser {
        cookie: format!("ocpp_session={}.{}", "0".repeat(16), "0".repeat(64)),
        ..login(&central, "admin", &password).await
    };
    assert_eq!(
        forged.send(Method::GET, "/api/me", None).await.0,
        StatusCode::UNAUTHORIZED
    );

    // A restart on the same database creates no second admin and prints nothing.
    let addr = central.http_addr();
    central.shutdown().await.expect("shutdown");
    let mut args = CentralArgs::with_database(sqlite_url(&dir)).ephemeral();
    args.http_listen = addr.to_string();
    let central = start(&args).await.expect("restart");
    assert!(central.initial_admin_password().is_none());
    let b = login(&central, "admin", &password).await;
    let (_, users) = b.send(Method::GET, "/api/users", None).await;
    assert_eq!(users.as_array().map(Vec::len), Some(1), "{users}");
    central.shutdown().await.expect("shutdown");

    // --admin-password-file: that password, nothing printed.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("admin-password");
    std::fs::write(&file, "from-a-file-password\n").expect("write");
    let mut args = CentralArgs::with_database(sqlite_url(&dir)).ephemeral();
    args.admin_password_file = Some(file);
    let central = start(&args).await.expect("start");
    assert!(central.initial_admin_password().is_none());
    login(&central, "admin", "from-a-file-password").await;
    central.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn failed_logins_from_one_address_are_limited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = central(&dir).await;
    let now = Arc::new(Mutex::new(Utc::now()));
    let clock = now.clone();
    central
        .auth()
        .set_clock(Arc::new(move || *clock.lock().expect("clock")));
    let password = central
        .initial_admin_password()
        .expect("pw")
        .expose()
        .to_owned();
    let anon = Api::new(central.http_addr());
    for _ in 0..5 {
        let (status, _) = anon
            .post(
                "/api/login",
                json!({ "username": "admin", "password": "guess-guess-guess" }),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/login", central.http_addr()))
        .json(&json!({ "username": "admin", "password": password }))
        .send()
        .await
        .expect("login");
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    assert!(r.headers().contains_key("retry-after"));
    *now.lock().expect("clock") += chrono::Duration::minutes(16);
    login(&central, "admin", &password).await;
    central.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn sessions_end_when_idle_and_when_too_old() {
    let dir = tempfile::tempdir().expect("tempdir");
    session_expiry(sqlite_url(&dir)).await;
}

#[tokio::test]
async fn session_expiry_on_postgres() {
    if let Some(url) = postgres_database("sessions").await {
        session_expiry(url).await;
    }
}

async fn session_expiry(url: String) {
    let mut args = CentralArgs::with_database(url).ephemeral();
    args.session_idle_timeout = 600;
    args.session_max_age = 3600;
    let central = start(&args).await.expect("start");
    let now: Arc<Mutex<DateTime<Utc>>> = Arc::new(Mutex::new(Utc::now()));
    let clock = now.clone();
    central
        .auth()
        .set_clock(Arc::new(move || *clock.lock().expect("clock")));
    let advance = |mins: i64| *now.lock().expect("clock") += chrono::Duration::minutes(mins);
    let password = central
        .initial_admin_password()
        .expect("pw")
        .expose()
        .to_owned();

    // Idle: 9 minutes between requests is fine, 10 is not.
    let b = login(&central, "admin", &password).await;
    advance(9);
    assert_eq!(b.send(Method::GET, "/api/me", None).await.0, StatusCode::OK);
    advance(9);
    assert_eq!(b.send(Method::GET, "/api/me", None).await.0, StatusCode::OK);
    advance(10);
    assert_eq!(
        b.send(Method::GET, "/api/me", None).await.0,
        StatusCode::UNAUTHORIZED,
        "idle for 10 minutes"
    );

    // Absolute: used every 5 minutes, it still ends an hour after login.
    let b = login(&central, "admin", &password).await;
    for _ in 0..11 {
        advance(5);
        assert_eq!(b.send(Method::GET, "/api/me", None).await.0, StatusCode::OK);
    }
    advance(5);
    assert_eq!(
        b.send(Method::GET, "/api/me", None).await.0,
        StatusCode::UNAUTHORIZED,
        "an hour after login"
    );
    central.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn cookie_requests_that_change_state_must_be_same_origin_with_the_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = central(&dir).await;
    let password = central
        .initial_admin_password()
        .expect("pw")
        .expose()
        .to_owned();
    let b = login(&central, "admin", &password).await;
    let token = json!({ "idTag": "CSRF-1", "status": "Accepted" });
    let post = |origin: Option<&str>, referer: Option<&str>, csrf: Option<&str>| {
        let mut r = b.req(Method::POST, "/api/tokens").json(&token);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        if let Some(x) = referer {
            r = r.header("referer", x);
        }
        if let Some(c) = csrf {
            r = r.header("x-csrf-token", c);
        }
        async move { r.send().await.expect("post").status() }
    };
    let same = b.origin.clone();
    let referer = format!("{same}/");
    assert_eq!(
        post(Some("http://evil.example"), None, Some(&b.csrf)).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(None, Some("http://evil.example/x"), Some(&b.csrf)).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(None, None, Some(&b.csrf)).await,
        StatusCode::FORBIDDEN,
        "no origin at all"
    );
    assert_eq!(
        post(Some(&same), None, None).await,
        StatusCode::FORBIDDEN,
        "no token"
    );
    assert_eq!(
        post(Some(&same), None, Some("0000")).await,
        StatusCode::FORBIDDEN,
        "wrong token"
    );
    assert_eq!(post(Some(&same), None, Some(&b.csrf)).await, StatusCode::OK);
    assert_eq!(
        post(None, Some(&referer), Some(&b.csrf)).await,
        StatusCode::OK
    );
    // Reading needs neither.
    assert_eq!(
        b.req(Method::GET, "/api/tokens")
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::OK
    );
    // Bearer requests are exempt.
    let admin = Api::admin(&central).await;
    assert_eq!(
        admin.post("/api/tokens", token.clone()).await.0,
        StatusCode::OK
    );
    // The login form refuses a foreign page too (login CSRF).
    let r = reqwest::Client::new()
        .post(format!("{same}/api/login"))
        .header("origin", "http://evil.example")
        .json(&json!({ "username": "admin", "password": password }))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    central.shutdown().await.expect("shutdown");
}

/// Raw HTTP/1 over TCP: what was answered (empty when the server closed without a word).
async fn raw(addr: std::net::SocketAddr, request: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the server closes")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn hosts_outside_the_allow_list_get_421() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = CentralArgs::with_database(sqlite_url(&dir)).ephemeral();
    args.allowed_hosts = vec!["charging.example".into()];
    let central = start(&args).await.expect("start");
    let addr = central.http_addr();
    let port = addr.port();
    let get = |host: String| async move {
        let answer = raw(
            addr,
            &format!("GET /api/me HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        answer.split(' ').nth(1).unwrap_or("").to_owned()
    };
    assert_eq!(get("evil.example".into()).await, "421");
    assert_eq!(
        get(format!("evil.example:{port}")).await,
        "421",
        "DNS rebinding"
    );
    assert_eq!(get("127.0.0.2".into()).await, "421");
    for ok in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "charging.example".into(),
        "charging.example:443".into(),
    ] {
        assert_eq!(get(ok.clone()).await, "401", "{ok} is served");
    }
    // The public routes are behind it too.
    let answer = raw(
        addr,
        "GET /health HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
    let answer = raw(addr, "GET /health HTTP/1.0\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.0 400"), "no Host: {answer}");
    central.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn api_keys_are_shown_once_and_revoked_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    api_keys(sqlite_url(&dir)).await;
}

#[tokio::test]
async fn api_keys_on_postgres() {
    if let Some(url) = postgres_database("keys").await {
        api_keys(url).await;
    }
}

async fn api_keys(url: String) {
    let central = start(&CentralArgs::with_database(url).ephemeral())
        .await
        .expect("start");
    let admin = Api::admin(&central).await;
    let (status, created) = admin
        .post("/api/keys", json!({ "name": "grafana", "role": "viewer" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().expect("the key, once").to_owned();
    let id = created["id"].as_str().expect("id").to_owned();
    assert!(key.starts_with(&format!("ocpp_{id}_")));
    let (_, list) = admin.get("/api/keys").await;
    let listed = list.to_string();
    assert!(
        listed.contains("grafana") && !listed.contains(&key[5 + 17..]),
        "{listed}"
    );

    let grafana = Api::with_key(central.http_addr(), &key);
    assert_eq!(grafana.get("/api/chargers").await.0, StatusCode::OK);
    let (status, body) = grafana
        .post("/api/tokens", json!({ "idTag": "X", "status": "Accepted" }))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (_, me) = grafana.get("/api/me").await;
    assert_eq!(
        me,
        json!({ "username": "key:grafana", "role": "viewer", "via": "key" })
    );
    // Never from the query string; a key with a changed secret is nobody.
    let anon = Api::new(central.http_addr());
    assert_eq!(
        anon.get(&format!("/api/chargers?api_key={key}")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        anon.get(&format!("/api/chargers?access_token={key}"))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let mut forged = key.clone();
    forged.pop();
    forged.push(if key.ends_with('0') { '1' } else { '0' });
    assert_eq!(
        Api::with_key(central.http_addr(), &forged)
            .get("/api/chargers")
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    let (status, _) = admin.delete(&format!("/api/keys/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        grafana.get("/api/chargers").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        admin.delete(&format!("/api/keys/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    central.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn accounts_roles_and_the_last_admin() {
    let dir = tempfile::tempdir().expect("tempdir");
    accounts(sqlite_url(&dir)).await;
}

#[tokio::test]
async fn accounts_on_postgres() {
    if let Some(url) = postgres_database("accounts").await {
        accounts(url).await;
    }
}

async fn accounts(url: String) {
    let central = start(&CentralArgs::with_database(url).ephemeral())
        .await
        .expect("start");
    let admin = Api::admin(&central).await;
    let (status, body) = admin
        .post(
            "/api/users",
            json!({ "username": "olga", "password": "short", "role": "operator" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = admin
        .post(
            "/api/users",
            json!({ "username": "olga", "password": "olga-password-1", "role": "operator" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(!body.to_string().contains("olga-password-1"));
    let (status, _) = admin
        .post(
            "/api/users",
            json!({ "username": "olga", "password": "olga-password-2", "role": "viewer" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let olga = login(&central, "olga", "olga-password-1").await;
    let (status, _) = olga
        .send(Method::POST, "/api/chargers/NOPE/reset", Some(json!({})))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "an operator may reset (the charger is unknown)"
    );
    let (status, _) = olga
        .send(
            Method::POST,
            "/api/tokens",
            Some(json!({ "idTag": "O", "status": "Accepted" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A demotion applies to the open session at once.
    let (status, _) = admin
        .put("/api/users/olga", json!({ "role": "viewer" }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = olga
        .send(Method::POST, "/api/chargers/NOPE/reset", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A new password ends her sessions.
    let (status, _) = admin
        .put("/api/users/olga", json!({ "password": "olga-password-2" }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        olga.send(Method::GET, "/api/me", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    login(&central, "olga", "olga-password-2").await;
    // The last admin stays.
    assert_eq!(
        admin.delete("/api/users/admin").await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        admin
            .put("/api/users/admin", json!({ "role": "viewer" }))
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        admin.delete("/api/users/olga").await.0,
        StatusCode::NO_CONTENT
    );
    let (status, _) = reqwest::Client::new()
        .post(format!("http://{}/api/login", central.http_addr()))
        .json(&json!({ "username": "olga", "password": "olga-password-2" }))
        .send()
        .await
        .map(|r| (r.status(), ()))
        .expect("login");
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    central.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn slow_headers_are_cut_off_and_big_bodies_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = CentralArgs::with_database(sqlite_url(&dir)).ephemeral();
    args.http_header_timeout_ms = 300;
    let central = start(&args).await.expect("start");
    let addr = central.http_addr();
    // A head that never ends: closed after the timeout (well before the test's 10 s).
    let began = std::time::Instant::now();
    let answer = raw(
        addr,
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n",
    )
    .await;
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer:?}"
    );
    // A connection that says nothing at all is closed too.
    let began = std::time::Instant::now();
    let answer = raw(addr, "").await;
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer:?}"
    );
    // A whole request is served.
    let answer = raw(
        addr,
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let admin = Api::admin(&central).await;
    let big = format!(
        r#"{{"idTag":"BIG","status":"Accepted","note":"{}"}}"#,
        "x".repeat(300 * 1024)
    );
    let (status, body) = admin.post_raw("/api/tokens", &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    central.shutdown().await.expect("shutdown");
}

#[test]
fn secrets_do_not_print() {
    let s = Secret::new("hunter2-hunter2");
    assert!(!format!("{s:?} {s}").contains("hunter2"));
}
