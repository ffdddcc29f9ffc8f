//! Hostile bytes on a raw socket: oversized messages, unknown message
//! types and garbage get 08P01 and a closed connection, never a panic, and
//! the server keeps serving others.

mod wire_support;

use pgvshard::wire::WireConfig;
use tokio::io::AsyncWriteExt;
use wire_support::raw::{self, assert_fatal_08p01, read_to_close, session};
use wire_support::{select_one, TestServer};

#[tokio::test]
async fn oversized_message_is_refused_before_it_is_read() {
    let server = TestServer::start_with(|c| c.max_message_size = 1024).await;
    let mut s = session(server.port).await;
    s.write_all(b"Q\x7f\xff\xff\xff").await.unwrap();
    assert_fatal_08p01(&read_to_close(&mut s).await, "invalid message length");

    // Just over the configured limit, body actually sent.
    let mut s = session(server.port).await;
    let mut msg = b"Q".to_vec();
    msg.extend_from_slice(&(1024 + 4 + 1i32).to_be_bytes());
    msg.extend(std::iter::repeat_n(b'x', 1025));
    s.write_all(&msg).await.unwrap();
    assert_fatal_08p01(&read_to_close(&mut s).await, "invalid message length");
    server.stop().await;
}

#[tokio::test]
async fn unknown_message_type_and_garbage_close_with_08p01() {
    let server = TestServer::start(WireConfig::default()).await;
    let mut s = session(server.port).await;
    s.write_all(b"z\0\0\0\x04").await.unwrap();
    assert_fatal_08p01(
        &read_to_close(&mut s).await,
        "invalid frontend message type 122",
    );

    let mut s = session(server.port).await;
    s.write_all(b"B\0\0\0\x06p\0").await.unwrap();
    assert_fatal_08p01(&read_to_close(&mut s).await, "invalid string in message");

    let mut s = raw::connect(server.port).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // As PostgreSQL: an impossible startup length is logged, not answered.
    assert_eq!(read_to_close(&mut s).await, b"");
    server.stop().await;
}

#[tokio::test]
async fn random_bytes_never_bring_the_server_down() {
    let server = TestServer::start_with(|c| c.max_message_size = 4096).await;
    // SplitMix64, seeded: reproducible garbage.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for round in 0..40 {
        let mut s = if round % 2 == 0 {
            session(server.port).await
        } else {
            raw::connect(server.port).await.unwrap()
        };
        let tags = b"QPBDESHCdcfpFX";
        let mut bytes = Vec::new();
        for _ in 0..4 {
            let r = next();
            bytes.push(tags[(r % tags.len() as u64) as usize]);
            let len = 4 + (r >> 8) % 40;
            bytes.extend_from_slice(&(len as i32).to_be_bytes());
            bytes.extend((0..len - 4).map(|_| next() as u8));
        }
        s.write_all(&bytes).await.ok();
        drop(s);
    }
    let client = server.connect("after").await;
    assert_eq!(select_one(&client).await, 1);
    server.stop().await;
}
