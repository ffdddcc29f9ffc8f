//! tokio-postgres and psql against the protocol layer with the fixture
//! handler: simple and extended protocol, text and binary formats, settings,
//! errors, portals with row limits, pgvector's types in binary.

mod wire_support;

use pgvshard::wire::WireConfig;
use tokio_postgres::SimpleQueryMessage;
use wire_support::{psql, select_one, TestServer};

#[tokio::test]
async fn simple_and_extended_queries() {
    let server = TestServer::start(WireConfig::default()).await;
    let client = server.connect("alice").await;

    let rows = client
        .simple_query("SELECT 1; SELECT series(3)")
        .await
        .unwrap();
    let values: Vec<_> = rows
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(values, ["1", "1", "2", "3"]);

    // Extended protocol: tokio-postgres asks for binary results.
    let row = client
        .query_one("SELECT $1::int8", &[&42i64])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 42);
    let row = client
        .query_one("SELECT $1::text", &[&"héllo"])
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), "héllo");
    let row = client
        .query_one("SELECT $1::float8", &[&0.1f64])
        .await
        .unwrap();
    assert_eq!(row.get::<_, f64>(0), 0.1);
    let row = client
        .query_one("SELECT $1::bool", &[&None::<bool>])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<bool>>(0), None);

    // Named statements are reused.
    let stmt = client.prepare("SELECT series(2)").await.unwrap();
    for _ in 0..2 {
        assert_eq!(client.query(&stmt, &[]).await.unwrap().len(), 2);
    }
    server.stop().await;
}

#[tokio::test]
async fn portal_row_limit_suspends_and_resumes() {
    let server = TestServer::start(WireConfig::default()).await;
    let mut client = server.connect("alice").await;
    let tx = client.transaction().await.unwrap();
    let stmt = tx.prepare("SELECT series(5)").await.unwrap();
    let portal = tx.bind(&stmt, &[]).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let batch = tx.query_portal(&portal, 2).await.unwrap();
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 2);
        seen.extend(batch.iter().map(|r| r.get::<_, i32>(0)));
    }
    assert_eq!(seen, [1, 2, 3, 4, 5]);
    tx.commit().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn errors_carry_sqlstate_and_the_session_goes_on() {
    let server = TestServer::start(WireConfig::default()).await;
    let client = server.connect("alice").await;
    let e = client.simple_query("SELECT fail()").await.unwrap_err();
    let db = e.as_db_error().unwrap();
    assert_eq!(db.code().code(), "22023");
    assert_eq!(db.message(), "fixture failure");
    assert_eq!(db.detail(), Some("some detail"));
    assert_eq!(db.hint(), Some("some hint"));
    // Extended: the error skips to Sync, then the next statement works.
    let e = client.query("SELECT fail()", &[]).await.unwrap_err();
    assert_eq!(e.as_db_error().unwrap().code().code(), "22023");
    let e = client.query_one("SELECT $1::int4", &[&"x"]).await;
    assert!(
        e.is_err(),
        "a text value bound as int4 is refused by the client"
    );
    assert_eq!(select_one(&client).await, 1);
    server.stop().await;
}

#[tokio::test]
async fn settings_set_show_reset_and_set_local() {
    let server = TestServer::start(WireConfig::default()).await;
    let client = server.connect("alice").await;
    let show = |name: &'static str| {
        let client = &client;
        async move {
            let rows = client.simple_query(&format!("SHOW {name}")).await.unwrap();
            match &rows[1] {
                SimpleQueryMessage::Row(r) => r.get(0).unwrap().to_string(),
                other => panic!("{other:?}"),
            }
        }
    };
    assert_eq!(show("hnsw.ef_search").await, "40");
    client
        .simple_query("SET hnsw.ef_search = 100")
        .await
        .unwrap();
    assert_eq!(show("hnsw.ef_search").await, "100");
    client
        .simple_query("BEGIN; SET LOCAL hnsw.ef_search = 7")
        .await
        .unwrap();
    assert_eq!(show("hnsw.ef_search").await, "7");
    client.simple_query("COMMIT").await.unwrap();
    assert_eq!(show("hnsw.ef_search").await, "100");
    client.simple_query("RESET hnsw.ef_search").await.unwrap();
    assert_eq!(show("hnsw.ef_search").await, "40");
    client
        .simple_query("SET statement_timeout = '5s'")
        .await
        .unwrap();
    assert_eq!(show("statement_timeout").await, "5s");

    let e = client
        .simple_query("SET hnsw.ef_search = 0")
        .await
        .unwrap_err();
    let db = e.as_db_error().unwrap();
    assert_eq!(db.code().code(), "22023");
    assert_eq!(
        db.message(),
        "0 is outside the valid range for parameter \"hnsw.ef_search\" (1 .. 1000)"
    );
    let e = client
        .simple_query("SET ivfflat.iterative_scan = strict_order")
        .await
        .unwrap_err();
    assert_eq!(
        e.as_db_error().unwrap().hint(),
        Some("Available values: off, relaxed_order.")
    );
    let e = client.simple_query("SHOW nope").await.unwrap_err();
    assert_eq!(e.as_db_error().unwrap().code().code(), "42704");
    assert_eq!(
        e.as_db_error().unwrap().message(),
        "unrecognized configuration parameter \"nope\""
    );
    let all = client.simple_query("SHOW ALL").await.unwrap();
    assert!(all.len() > 20);
    server.stop().await;
}

#[tokio::test]
async fn pgvector_types_round_trip_in_binary() {
    use pgvector::{Bit, HalfVector, SparseVector, Vector};
    let server = TestServer::start(WireConfig::default()).await;
    let client = server.connect("alice").await;

    let v = Vector::from(vec![1.0, -2.5, 3.25]);
    let row = client.query_one("SELECT $1::vector", &[&v]).await.unwrap();
    assert_eq!(row.get::<_, Vector>(0), v);

    let h = HalfVector::from_f32_slice(&[0.5, 1.5]);
    let row = client.query_one("SELECT $1::halfvec", &[&h]).await.unwrap();
    assert_eq!(row.get::<_, HalfVector>(0), h);

    let s = SparseVector::from_dense(&[0.0, 2.0, 0.0, -1.0]);
    let row = client
        .query_one("SELECT $1::sparsevec", &[&s])
        .await
        .unwrap();
    assert_eq!(row.get::<_, SparseVector>(0), s);

    let b = Bit::new(&[true, false, true, true, false, false, false, false, true]);
    let row = client.query_one("SELECT $1::bit", &[&b]).await.unwrap();
    assert_eq!(row.get::<_, Bit>(0).as_bytes(), b.as_bytes());
    assert_eq!(row.get::<_, Bit>(0).len(), 9);

    // Text results of the same types through the simple protocol.
    let rows = client.simple_query("SELECT 1").await.unwrap();
    assert!(matches!(rows[0], SimpleQueryMessage::RowDescription(_)));
    server.stop().await;
}

#[tokio::test]
async fn psql_runs_queries_and_reports_errors() {
    let server = TestServer::start(WireConfig::default()).await;
    let psql = |sql: &str| {
        let mut command = server.psql_query("x", sql);
        command.env("PGCONNECT_TIMEOUT", "5");
        psql::output(command)
    };
    let out = psql("SELECT series(3)").await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n2\n3\n");
    let out = psql("SHOW application_name").await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "psql\n");
    let out = psql("SELECT notice()").await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOTICE:  hello from the fixture"));
    let out = psql("SET hnsw.ef_search = 5000").await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "ERROR:  5000 is outside the valid range for parameter \"hnsw.ef_search\" (1 .. 1000)"
    ));
    server.stop().await;
}
