//! Test support (feature `testing`): a fresh database for every test, on either backend.
//!
//! PostgreSQL tests use the server at `OPENLINE_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`): each test creates its own database there and drops
//! it when done, so tests run in parallel without seeing each other's rows.

#![allow(clippy::expect_used)]

use crate::DatabaseUrl;

/// Each `name => body;` as two tests, `sqlite::name` and `postgres::name`, that run `body` with the
/// backend (`body(backend)`), or, after `run = f;`, through the file's own `f(backend, body)` (which
/// opens the store the body takes).
#[macro_export]
macro_rules! both_backends {
    (run = $run:ident; $($name:ident => $body:ident;)*) => {
        mod sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$run(openline_store::Backend::Sqlite, super::$body).await } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$run(openline_store::Backend::Postgres, super::$body).await } )* }
    };
    ($($name:ident => $body:ident;)*) => {
        mod sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$body(openline_store::Backend::Sqlite).await } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$body(openline_store::Backend::Postgres).await } )* }
    };
}

/// A database that exists for one test. Dropping it removes it.
pub struct TestDb {
    pub url: DatabaseUrl,
    _dir: Option<tempfile::TempDir>,
    drop_pg: Option<(String, String)>,
}

pub fn admin_url() -> String {
    std::env::var("OPENLINE_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

impl TestDb {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = DatabaseUrl::Sqlite(dir.path().join("openline.db"));
        Self {
            url,
            _dir: Some(dir),
            drop_pg: None,
        }
    }

    pub fn postgres() -> Self {
        // The synchronous client must not run on an async runtime thread.
        std::thread::scope(|s| {
            s.spawn(Self::postgres_on_this_thread)
                .join()
                .expect("create test database")
        })
    }

    fn postgres_on_this_thread() -> Self {
        let admin = admin_url();
        let name = format!("openline_t_{}", ulid::Ulid::new().to_string().to_lowercase());
        let mut client = postgres::Client::connect(&admin, postgres::NoTls)
            .expect("PostgreSQL for tests (set OPENLINE_TEST_POSTGRES_URL)");
        client
            .batch_execute(&format!("create database {name}"))
            .expect("create test database");
        let mut url = url::Url::parse(&admin).expect("admin url");
        url.set_path(&format!("/{name}"));
        Self {
            url: DatabaseUrl::Postgres(url.to_string()),
            _dir: None,
            drop_pg: Some((admin, name)),
        }
    }

    pub fn new(backend: crate::Backend) -> Self {
        match backend {
            crate::Backend::Sqlite => Self::sqlite(),
            crate::Backend::Postgres => Self::postgres(),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.drop_pg.take() {
            std::thread::scope(|s| {
                s.spawn(|| {
                    if let Ok(mut client) = postgres::Client::connect(&admin, postgres::NoTls) {
                        let _ = client.batch_execute(&format!("drop database if exists {name} with (force)"));
                    }
                });
            });
        }
    }
}

/// A new organization `name` with one WhatsApp Cloud API number (`+15550001000`, Cloud API id
/// `phone_number_id`, 80/s), the world most store tests start from.
pub fn org_with_number(
    c: &mut dyn crate::Conn,
    name: &str,
    phone_number_id: &str,
    now: i64,
) -> Result<(crate::orgs::Organization, crate::senders::Sender), crate::StoreError> {
    let org = crate::orgs::create(c, name, None, "on", now)?;
    let sender = crate::senders::create(
        c,
        &crate::senders::NewSender {
            org_id: &org.id,
            channel: openline_domain::Channel::Whatsapp,
            provider: openline_domain::ProviderKind::CloudApi,
            phone_number: "+15550001000",
            phone_number_id,
            waba_id: Some("waba1"),
            display_name: "Demo",
            throughput_per_s: 80,
        },
        now,
    )?;
    Ok((org, sender))
}
