//! Canaries for the test broker's known limits (tansu 0.6): they assert
//! tansu's own behaviour, not vitalstream's, so they run outside the product
//! gate: `bash scripts/tansu-canaries.sh` (feature `tansu-canaries`). A
//! failing canary means a tansu upgrade fixed a limit: update the notes and
//! the workarounds it names.
//!
//! Known limit of tansu 0.6 (reproduced below, minimal): its fetch
//! responses carry no aborted-transaction list, so a librdkafka consumer
//! with `isolation.level=read_committed` receives the records of ABORTED
//! transactions as if committed. The last stable offset is honoured (open
//! transactions are not read) and the COMMIT/ABORT control markers are in
//! the log, which is what `vitalstream::kafka::read_committed` uses. Two
//! more limits are reproduced at the end: a dead producer's transaction
//! never times out, and a commit stays unreadable while it shares a
//! partition with another producer's earlier, still open transaction.

mod common;

use std::time::Duration;

use common::txn::*;
use common::*;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use vitalstream::kafka::{TopicSpec, ensure_topics, read_committed};

/// The broker limit itself: librdkafka's read_committed consumer is given
/// the aborted records. Kept as a test so an upgrade of the test broker
/// that fixes it is noticed (then state restore could use librdkafka on
/// plaintext connections too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tansu_gives_aborted_records_to_read_committed_consumers() {
    let broker = start_broker().await;
    let open = write_sequence(&broker).await;
    open.commit_transaction(Duration::from_secs(20))
        .expect("commit");
    let consumer: StreamConsumer = client(&broker)
        .set("group.id", "limit-check")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = rdkafka::TopicPartitionList::new();
    assignment
        .add_partition_offset(TOPIC, 0, rdkafka::Offset::Beginning)
        .expect("partition");
    consumer.assign(&assignment).expect("assign");
    let mut keys = Vec::new();
    while keys.len() < 8 {
        match tokio::time::timeout(Duration::from_secs(15), consumer.recv()).await {
            Ok(Ok(m)) => keys.push(String::from_utf8_lossy(m.key().expect("key")).into_owned()),
            Ok(Err(e)) => panic!("consume: {e}"),
            Err(_) => break,
        }
    }
    assert!(
        keys.contains(&"a-1".to_owned()),
        "tansu no longer returns aborted records to read_committed consumers \
         (got {keys:?}): the limit is gone, update this test and the notes"
    );
}

/// Second limit: tansu 0.6 never aborts the open transaction of a producer
/// that died, however long past its `transaction.timeout.ms` (a Kafka
/// transaction coordinator aborts it then). The partition's last stable
/// offset stays at the open transaction, so nothing written after it is
/// readable with read_committed, until a producer with the same
/// transactional id initialises and so fences and aborts it. The
/// two-instance fault test stands in for the coordinator that way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tansu_keeps_a_dead_producers_transaction_open_past_its_timeout() {
    let broker = start_broker().await;
    ensure_topics(&client(&broker), &[TopicSpec::new(TOPIC, 1)])
        .await
        .expect("topic");
    let plain: FutureProducer = client(&broker).create().expect("producer");
    send(&plain, "plain-1").await;
    let dead: FutureProducer = client(&broker)
        .set("transactional.id", "dies-mid-transaction")
        .set("transaction.timeout.ms", "1000")
        .create()
        .expect("producer");
    dead.init_transactions(Duration::from_secs(20))
        .expect("init");
    dead.begin_transaction().expect("begin");
    send(&dead, "open-1").await;
    send(&plain, "plain-2").await;
    // The producer "dies": no commit, no abort, no more requests.
    std::mem::forget(dead);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        committed_keys(&broker).await,
        ["plain-1"],
        "tansu now aborts timed-out transactions: the limit is gone, drop the \
         fencing stand-in from tests/faults.rs and update this test"
    );
    // A successor with the same transactional id fences it: aborted.
    let successor = transactional(&broker, "dies-mid-transaction");
    drop(successor);
    assert_eq!(committed_keys(&broker).await, ["plain-1", "plain-2"]);
}

/// Third limit: tansu 0.6 keeps a committed transaction unreadable, on
/// every partition it wrote, while an earlier transaction of another
/// producer that shares one of those partitions is still open; a
/// transaction that shares none is readable at once. `commit_transaction`
/// succeeds either way. A pipeline that restores a partition's state right
/// after committing to it can therefore read a changelog without that
/// commit (a Kafka broker writes its commit markers asynchronously too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tansu_hides_a_commit_that_overlaps_an_open_transaction() {
    let broker = start_broker().await;
    ensure_topics(&client(&broker), &[TopicSpec::new(TOPIC, 1)])
        .await
        .expect("topic");
    let other = "txn-check-other";
    ensure_topics(&client(&broker), &[TopicSpec::new(other, 1)])
        .await
        .expect("topic");
    let open = transactional(&broker, "stays-open");
    open.begin_transaction().expect("begin");
    send(&open, "open-1").await;
    let p = transactional(&broker, "commits");
    let t = Duration::from_secs(20);
    let committed_in = |topic: &'static str| {
        let bootstrap = broker.bootstrap.clone();
        async move {
            tokio::task::spawn_blocking(move || read_committed(&bootstrap, topic, 0, t))
                .await
                .expect("task")
                .expect("read")
                .len()
        }
    };
    // Shares no partition with the open transaction: readable.
    p.begin_transaction().expect("begin");
    p.send(FutureRecord::to(other).key("a").payload("a"), t)
        .await
        .expect("delivered");
    p.commit_transaction(t).expect("commit");
    assert_eq!(committed_in(other).await, 1);
    // Shares TOPIC/0 with it: committed, yet readable nowhere.
    p.begin_transaction().expect("begin");
    send(&p, "c-1").await;
    p.send(FutureRecord::to(other).key("b").payload("b"), t)
        .await
        .expect("delivered");
    p.commit_transaction(t).expect("commit");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        committed_in(other).await,
        1,
        "tansu now shows a commit that overlaps an open transaction: the \
         limit is gone, update this test and the note in pipeline.rs"
    );
    open.commit_transaction(t).expect("commit");
    assert_eq!(committed_in(other).await, 2, "readable once it ended");
    assert_eq!(committed_keys(&broker).await, ["open-1", "c-1"]);
}
