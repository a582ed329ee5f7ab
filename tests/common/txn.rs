//! Transactions written on the test broker in a known pattern, and the
//! records a read_committed reader should see of them: shared by the
//! committed-reader tests and the tansu canaries.

use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use vitalstream::kafka::{TopicSpec, ensure_topics, read_committed};

use super::{Broker, client};

pub const TOPIC: &str = "txn-check";

pub async fn send(p: &FutureProducer, key: &str) {
    p.send(
        FutureRecord::to(TOPIC).key(key).payload(key),
        Duration::from_secs(10),
    )
    .await
    .expect("delivered");
}

pub fn transactional(broker: &Broker, id: &str) -> FutureProducer {
    let p: FutureProducer = client(broker)
        .set("transactional.id", id)
        .create()
        .expect("producer");
    p.init_transactions(Duration::from_secs(20)).expect("init");
    p
}

/// Writes: plain-1, committed (c-1, c-2), aborted (a-1, a-2), committed
/// (c-3), then an open transaction (o-1) and plain-2 after it. Returns the
/// producer holding the open transaction.
pub async fn write_sequence(broker: &Broker) -> FutureProducer {
    ensure_topics(&client(broker), &[TopicSpec::new(TOPIC, 1)])
        .await
        .expect("topic");
    let plain: FutureProducer = client(broker).create().expect("producer");
    send(&plain, "plain-1").await;
    let p = transactional(broker, "txn-check-1");
    let t = Duration::from_secs(20);
    p.begin_transaction().expect("begin");
    send(&p, "c-1").await;
    send(&p, "c-2").await;
    p.commit_transaction(t).expect("commit");
    p.begin_transaction().expect("begin");
    send(&p, "a-1").await;
    send(&p, "a-2").await;
    p.abort_transaction(t).expect("abort");
    p.begin_transaction().expect("begin");
    send(&p, "c-3").await;
    p.commit_transaction(t).expect("commit");
    p.begin_transaction().expect("begin");
    send(&p, "o-1").await;
    send(&plain, "plain-2").await;
    p
}

/// Keys of TOPIC/0 as the protocol-level committed reader returns them.
pub async fn committed_keys(broker: &Broker) -> Vec<String> {
    let bootstrap = broker.bootstrap.clone();
    let records = tokio::task::spawn_blocking(move || {
        read_committed(&bootstrap, TOPIC, 0, Duration::from_secs(20))
    })
    .await
    .expect("task")
    .expect("read");
    records
        .into_iter()
        .map(|r| String::from_utf8(r.key.expect("key")).expect("utf-8"))
        .collect()
}
