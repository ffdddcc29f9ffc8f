//! A shard configured with SCRAM-SHA-256 users (config file): the right
//! password connects, a wrong one gets 28P01.

mod shard_support;

use shard_support::{fresh_dir, sqlstate, Shard};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_users_from_the_config_file() {
    let dir = fresh_dir("auth");
    let config = dir.with_extension("yaml");
    std::fs::write(&config, "auth: scram-sha-256\nusers:\n  app: s3cret\n").unwrap();
    let shard = Shard::start_with(&dir, &["--config", config.to_str().unwrap()]);
    let connect = |password: &str| {
        let mut c = tokio_postgres::Config::new();
        c.host("127.0.0.1")
            .port(shard.port)
            .user("app")
            .password(password)
            .dbname("db");
        async move { c.connect(tokio_postgres::NoTls).await }
    };
    let (client, conn) = connect("s3cret").await.unwrap();
    tokio::spawn(conn);
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    let e = connect("wrong")
        .await
        .err()
        .expect("a wrong password is refused");
    assert_eq!(sqlstate(&e), "28P01");
    shard.stop();
}
