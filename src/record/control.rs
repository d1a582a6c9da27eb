//! Control records: the COMMIT and ABORT markers that end a transaction.

use bytes::Bytes;

use super::layout::{get_i16, get_i32};
use crate::error::DecodeError;

/// The type in a control record's key (`ControlRecordType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ControlRecordType {
    /// Type 0: the transaction was aborted.
    Abort,
    /// Type 1: the transaction was committed.
    Commit,
    /// Any other type (2–6 appear only in KRaft logs); Kafka ignores them, and so does partlog.
    Unknown(i16),
}

impl ControlRecordType {
    /// Kafka's number for this type.
    pub const fn id(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
            ControlRecordType::Unknown(t) => t,
        }
    }

    /// Parses a control record key: `int16 version` + `int16 type`.
    ///
    /// # Errors
    /// [`DecodeError::Inconsistent`] when the key is shorter than 4 bytes or its version
    /// is negative (Kafka treats both as corruption).
    pub fn parse_key(key: &[u8]) -> Result<ControlRecordType, DecodeError> {
        if key.len() < 4 {
            return Err(DecodeError::Inconsistent(
                "control record key shorter than 4 bytes",
            ));
        }
        if get_i16(key, 0) < 0 {
            return Err(DecodeError::Inconsistent(
                "control record key has a negative version",
            ));
        }
        Ok(match get_i16(key, 2) {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            t => ControlRecordType::Unknown(t),
        })
    }

    /// The 4-byte key of a version-0 control record of this type.
    pub fn key(self) -> Bytes {
        let mut k = Vec::with_capacity(4);
        k.extend_from_slice(&0i16.to_be_bytes());
        k.extend_from_slice(&self.id().to_be_bytes());
        Bytes::from(k)
    }
}

/// The value of a COMMIT or ABORT marker (`EndTransactionMarker`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EndTxnMarker {
    /// The transaction coordinator's epoch when it wrote the marker.
    pub coordinator_epoch: i32,
}

impl EndTxnMarker {
    /// Parses `int16 version` + `int32 coordinatorEpoch`; longer values are accepted.
    ///
    /// # Errors
    /// [`DecodeError::Inconsistent`] when shorter than 6 bytes or of negative version.
    pub fn parse(value: &[u8]) -> Result<EndTxnMarker, DecodeError> {
        if value.len() < 6 {
            return Err(DecodeError::Inconsistent(
                "end-transaction marker shorter than 6 bytes",
            ));
        }
        if get_i16(value, 0) < 0 {
            return Err(DecodeError::Inconsistent(
                "end-transaction marker has a negative version",
            ));
        }
        Ok(EndTxnMarker {
            coordinator_epoch: get_i32(value, 2),
        })
    }

    /// The 6-byte version-0 encoding.
    pub fn value(self) -> Bytes {
        let mut v = Vec::with_capacity(6);
        v.extend_from_slice(&0i16.to_be_bytes());
        v.extend_from_slice(&self.coordinator_epoch.to_be_bytes());
        Bytes::from(v)
    }
}
