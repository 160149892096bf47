//! A driver's browser against the example central system's driver API: the `ocpp_driver`
//! cookie, the CSRF token and the Origin a browser sends.
// Each test file includes this module and uses part of it.
#![allow(dead_code)]

use ocpp_examples::backend::run::RunningCentral;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A driver's browser: the `ocpp_driver` cookie, the CSRF token and the Origin a browser
/// sends.
pub struct DriverClient {
    http: reqwest::Client,
    base: String,
    cookie: std::sync::Mutex<Option<String>>,
    pub csrf: std::sync::Mutex<String>,
}

impl DriverClient {
    pub fn new(central: &RunningCentral) -> DriverClient {
        DriverClient {
            http: reqwest::Client::new(),
            base: format!("http://{}", central.http_addr()),
            cookie: std::sync::Mutex::new(None),
            csrf: std::sync::Mutex::new(String::new()),
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("origin", &self.base)
            .header("x-csrf-token", self.csrf.lock().unwrap().clone());
        if let Some(c) = self.cookie.lock().unwrap().clone() {
            r = r.header("cookie", c);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("HTTP");
        if let Some(set) = resp.headers().get("set-cookie") {
            let v = set
                .to_str()
                .expect("cookie")
                .split(';')
                .next()
                .expect("pair")
                .to_owned();
            *self.cookie.lock().unwrap() = Some(v);
        }
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if let Some(t) = v["csrfToken"].as_str() {
            *self.csrf.lock().unwrap() = t.to_owned();
        }
        (status, v)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn text(&self, path: &str) -> (StatusCode, String) {
        let mut r = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = self.cookie.lock().unwrap().clone() {
            r = r.header("cookie", c);
        }
        let resp = r.send().await.expect("HTTP");
        (resp.status(), resp.text().await.expect("body"))
    }

    /// Signs up `email` with `card` (none: no card); the account.
    pub async fn sign_up(
        central: &RunningCentral,
        email: &str,
        card: Option<&str>,
    ) -> (DriverClient, Value) {
        let d = DriverClient::new(central);
        let (s, me) = d
            .post(
                "/api/driver/signup",
                json!({ "email": email, "name": "Test Driver", "password": "correct horse battery" }),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{me}");
        if let Some(card) = card {
            let (s, a) = d.put("/api/driver/card", json!({ "number": card })).await;
            assert_eq!(s, StatusCode::OK, "{a}");
        }
        (d, me["account"].clone())
    }
}
