//! The HTTP client the example-backend tests use against the central system's API.

use reqwest::StatusCode;
use serde_json::Value;

/// A client of one central system's HTTP API; every answer as (status, JSON body or null).
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    /// An anonymous client of `http://{addr}`.
    #[allow(dead_code)]
    pub fn new(addr: std::net::SocketAddr) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: format!("http://{addr}"),
        }
    }

    /// A client of `http://{addr}` that sends `Authorization: Bearer {key}`.
    pub fn with_key(addr: std::net::SocketAddr, key: &str) -> Api {
        let mut bearer = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
            .expect("a key is a header value");
        bearer.set_sensitive(true);
        let http = reqwest::Client::builder()
            .default_headers(reqwest::header::HeaderMap::from_iter([(
                reqwest::header::AUTHORIZATION,
                bearer,
            )]))
            .build()
            .expect("HTTP client");
        Api {
            http,
            base: format!("http://{addr}"),
        }
    }

    /// A client of `central` with a fresh API key of `role` (made through the library, as an
    /// admin would with `POST /api/keys`).
    #[allow(dead_code)]
    pub async fn with_role(
        central: &ocpp_examples::backend::run::RunningCentral,
        role: ocpp_examples::backend::auth::Role,
    ) -> Api {
        let (_, key) = central
            .auth()
            .create_api_key("tests", role, "tests")
            .await
            .expect("API key");
        Api::with_key(central.http_addr(), key.expose())
    }

    /// A client of `central` with a fresh admin API key.
    #[allow(dead_code)]
    pub async fn admin(central: &ocpp_examples::backend::run::RunningCentral) -> Api {
        Api::with_role(central, ocpp_examples::backend::auth::Role::Admin).await
    }

    /// DELETE `path`.
    #[allow(dead_code)]
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        Self::answer(
            self.http.delete(format!("{}{path}", self.base)),
            "HTTP DELETE",
        )
        .await
    }

    /// PUT `body` as JSON to `path`.
    #[allow(dead_code)]
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        Self::answer(
            self.http.put(format!("{}{path}", self.base)).json(&body),
            "HTTP PUT",
        )
        .await
    }

    async fn answer(r: reqwest::RequestBuilder, what: &str) -> (StatusCode, Value) {
        let r = r.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// GET `path`.
    #[allow(dead_code)] // not every test binary uses every method
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        Self::answer(self.http.get(format!("{}{path}", self.base)), "HTTP GET").await
    }

    /// GET `path`, with its `X-Total-Count` header (a paged list: how many matched).
    #[allow(dead_code)]
    pub async fn get_paged(&self, path: &str) -> (StatusCode, Value, Option<usize>) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("HTTP GET");
        let status = res.status();
        let total = res
            .headers()
            .get("x-total-count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body = res.json().await.unwrap_or(Value::Null);
        (status, body, total)
    }

    /// POST `body` as JSON to `path`.
    #[allow(dead_code)]
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        Self::answer(
            self.http.post(format!("{}{path}", self.base)).json(&body),
            "HTTP POST",
        )
        .await
    }

    /// POST raw text labelled as JSON to `path`.
    #[allow(dead_code)]
    pub async fn post_raw(&self, path: &str, body: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        Self::answer(r, "HTTP POST").await
    }

    /// GET `path` as text.
    #[allow(dead_code)]
    pub async fn text(&self, path: &str) -> String {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("HTTP GET: {e}"));
        r.text().await.unwrap_or_else(|e| panic!("HTTP body: {e}"))
    }

    /// POST raw bytes to `path` (`application/octet-stream`).
    #[allow(dead_code)]
    pub async fn post_bytes(&self, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/octet-stream")
            .body(body);
        Self::answer(r, "HTTP POST").await
    }

    /// PUT raw bytes to `path`.
    #[allow(dead_code)]
    pub async fn put_bytes(&self, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let r = self.http.put(format!("{}{path}", self.base)).body(body);
        Self::answer(r, "HTTP PUT").await
    }

    /// GET `path` as bytes, with the status.
    #[allow(dead_code)]
    pub async fn bytes(&self, path: &str) -> (StatusCode, Vec<u8>) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("HTTP GET: {e}"));
        let status = r.status();
        let body = r.bytes().await.unwrap_or_else(|e| panic!("HTTP body: {e}"));
        (status, body.to_vec())
    }
}
