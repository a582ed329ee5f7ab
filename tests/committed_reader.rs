//! The protocol-level committed reader (the compatibility mode that state
//! restore and the exactly-once checks use on brokers that send no
//! aborted-transaction list): committed records kept, aborted ones dropped,
//! nothing read at or after an open transaction.

mod common;

use std::time::Duration;

use common::txn::*;
use common::*;
use rdkafka::producer::Producer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_reader_keeps_committed_drops_aborted_and_stops_before_open() {
    let broker = start_broker().await;
    let open = write_sequence(&broker).await;
    assert_eq!(
        committed_keys(&broker).await,
        ["plain-1", "c-1", "c-2", "c-3"],
        "aborted records dropped; nothing at or after the open transaction"
    );
    open.commit_transaction(Duration::from_secs(20))
        .expect("commit");
    assert_eq!(
        committed_keys(&broker).await,
        ["plain-1", "c-1", "c-2", "c-3", "o-1", "plain-2"]
    );
}
