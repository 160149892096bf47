//! A fresh PostgreSQL database for a test, on the server the test command starts.

/// The URL of a new, empty database for the test `name` (named after it and this process) on
/// the server `OCPP_TEST_POSTGRES_URL` names; `None`, with a loud line saying the test was
/// skipped, when the variable is not set (`scripts/test.sh` installs and starts PostgreSQL
/// and sets it).
pub async fn postgres_database(name: &str) -> Option<String> {
    let Ok(admin) = std::env::var("OCPP_TEST_POSTGRES_URL") else {
        eprintln!(
            "\n*** SKIPPED {name} on PostgreSQL: OCPP_TEST_POSTGRES_URL is not set (scripts/test.sh \
             installs and starts PostgreSQL and sets it) ***\n"
        );
        return None;
    };
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&admin)
        .await
        .expect("connect to the test PostgreSQL server");
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let db = format!("ocpp_{name}_{}", std::process::id());
    for sql in [
        format!("DROP DATABASE IF EXISTS {db}"),
        format!("CREATE DATABASE {db}"),
    ] {
        sqlx::query(&sql).execute(&pool).await.expect(&sql);
    }
    pool.close().await;
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    Some(format!("{base}/{db}"))
}
