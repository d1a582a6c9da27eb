//! The idempotent producer's identity and sequence numbering (reference §6.1).
//!
//! A producer with `enable_idempotence` gets a producer id from the broker (epoch 0)
//! when it first finds a topic to send to. Each partition's records are numbered from 0, counted in records
//! and wrapping from `i32::MAX` to 0; a batch's base sequence is fixed when the batch is
//! taken from the partition's open batch, so `send` itself does no extra work. The log
//! checks each batch against the last five of that producer (see
//! [`Log::append`](crate::Log::append)): a batch resent after an ambiguous failure is
//! answered with its original offsets and not written again.

use std::sync::OnceLock;

use crate::broker::Broker;
use crate::error::Result;
use crate::record::ProducerInfo;

use super::ProducerConfig;

/// An idempotent producer's id and epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProducerId {
    pub id: i64,
    pub epoch: i16,
    /// Whether batches are transactional.
    pub transactional: bool,
}

impl ProducerId {
    /// The batch header fields of a batch whose first record has `base_sequence`.
    pub(crate) fn batch_info(self, base_sequence: i32) -> ProducerInfo {
        ProducerInfo {
            producer_id: self.id,
            producer_epoch: self.epoch,
            base_sequence,
        }
    }
}

/// Gives an idempotent producer its id from the broker, the first time it finds a
/// topic to send to (so a producer that never sends reserves nothing). A transactional
/// producer gets its id from `init_transactions` instead.
pub(crate) fn ensure_id(
    broker: &Broker,
    config: &ProducerConfig,
    slot: &OnceLock<ProducerId>,
) -> Result<()> {
    if !config.enable_idempotence || config.transactional_id.is_some() || slot.get().is_some() {
        return Ok(());
    }
    let id = broker.allocate_producer_id()?;
    // Two threads may race here; the loser's id is simply never used.
    let _first = slot.set(ProducerId {
        id,
        epoch: 0,
        transactional: false,
    });
    Ok(())
}

/// The sequence after a batch of `records` records starting at `base`, wrapping from
/// `i32::MAX` to 0 as Kafka does.
pub(crate) fn next_sequence(base: i32, records: usize) -> i32 {
    ((i64::from(base) + records as i64) % (i64::from(i32::MAX) + 1)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_count_records_and_wrap() {
        assert_eq!(next_sequence(0, 3), 3);
        assert_eq!(next_sequence(i32::MAX - 1, 1), i32::MAX);
        assert_eq!(next_sequence(i32::MAX - 1, 2), 0);
        assert_eq!(next_sequence(i32::MAX, 5), 4);
    }
}
