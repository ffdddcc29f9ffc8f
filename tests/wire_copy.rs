//! COPY FROM STDIN and COPY TO STDOUT framing through tokio-postgres and psql.

mod wire_support;

use bytes::Bytes;
use futures_util::{SinkExt, TryStreamExt};
use pgvshard::wire::WireConfig;
use wire_support::{psql, select_one, TestServer};

#[tokio::test]
async fn copy_in_and_out_with_tokio_postgres() {
    let server = TestServer::start(WireConfig::default()).await;
    let client = server.connect("alice").await;

    for (sql, data, want) in [
        ("COPY t FROM STDIN", "1\t[1,2]\n2\t[3,4]\n", 2),
        ("COPY t FROM STDIN (FORMAT csv)", "1,\"[1,2]\"\n", 1),
        ("COPY t FROM STDIN (FORMAT binary)", "PGCOPY\n\u{ff}", 9),
    ] {
        let sink = client.copy_in(sql).await.unwrap();
        futures_util::pin_mut!(sink);
        for chunk in data.as_bytes().chunks(3) {
            sink.send(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        assert_eq!(sink.finish().await.unwrap(), want, "{sql}");
    }

    let stream = client.copy_out("COPY t TO STDOUT").await.unwrap();
    let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
    assert_eq!(chunks.concat(), b"1\t[1,1]\n2\t[2,2]\n3\t[3,3]\n");

    // An aborted COPY (the sink dropped) fails the statement; the session goes on.
    {
        let sink = client
            .copy_in::<_, Bytes>("COPY t FROM STDIN")
            .await
            .unwrap();
        drop(sink);
    }
    assert_eq!(select_one(&client).await, 1);
    server.stop().await;
}

#[tokio::test]
async fn copy_with_psql() {
    let server = TestServer::start(WireConfig::default()).await;
    let mut command = server.psql("x");
    command.args(["-c", "COPY t FROM STDIN", "-c", "COPY t TO STDOUT"]);
    let out = psql::output_with_input(command, b"1\ta\n2\tb\n3\tc\n\\.\n").await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // psql 15 also sends the `\.` end line as data; the fixture counts lines.
    assert!(stdout.starts_with("COPY 4\n"), "{stdout}");
    assert!(stdout.contains("3\t[3,3]\n"), "{stdout}");
    server.stop().await;
}
