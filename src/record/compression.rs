//! Kafka's compression codecs as pluggable trait objects.
//!
//! A batch names its codec in bits 0–2 of its attributes with one of Kafka's fixed ids
//! (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd). The ids are always recognised, whatever
//! cargo features are on; what a build may lack is an *implementation*, and decoding a
//! batch whose codec has none returns [`DecodeError::CodecUnavailable`] naming it.
//!
//! [`Codecs`] maps each id to an `Arc<dyn Codec>`. [`Codecs::default`] holds the built-in
//! implementations; [`Codecs::with`] replaces one, so an application can plug in another
//! compression level or a faster build for the same id.

use std::fmt;
use std::io;
use std::sync::Arc;

use super::codec;
use crate::error::DecodeError;

/// A compression codec id as Kafka numbers them (`CompressionType.forId`).
///
/// Kafka name: the `compression.type` topic and producer config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Compression {
    /// No compression (id 0).
    #[default]
    None,
    /// gzip, RFC 1952 (id 1).
    Gzip,
    /// Snappy in xerial framing when written; raw snappy is accepted when read (id 2).
    Snappy,
    /// LZ4 in Kafka's frame: independent 64 KiB blocks, no checksums (id 3).
    Lz4,
    /// Zstandard, decoded as a stream (id 4).
    Zstd,
}

impl Compression {
    /// Every codec, in id order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// Kafka's id for this codec, as stored in attribute bits 0–2.
    pub const fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec for a Kafka id, or `None` for 5–7 (invalid in Kafka too).
    pub const fn from_id(id: u8) -> Option<Compression> {
        match id {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// Kafka's name for this codec (`none`, `gzip`, `snappy`, `lz4`, `zstd`).
    pub const fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Parses Kafka's name for a codec (`none`, `gzip`, `snappy`, `lz4`, `zstd`).
    pub fn from_name(name: &str) -> Option<Compression> {
        Compression::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One compression algorithm, framed exactly as Kafka frames it inside a batch.
///
/// `compress` receives the concatenated records of a batch and appends one compressed
/// stream to `out`; `decompress` is its inverse. Both append and never clear `out`.
/// Implementations must be deterministic in format (any reader of Kafka's framing must
/// accept the output) but need not produce the same bytes as Java's compressors.
pub trait Codec: Send + Sync + fmt::Debug {
    /// The id this codec implements.
    fn compression(&self) -> Compression;

    /// Appends the compressed form of `input` to `out`.
    ///
    /// # Errors
    /// An I/O error from the compressor (the built-in ones only fail on allocation).
    fn compress(&self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()>;

    /// Appends the decompressed form of `input` to `out`.
    ///
    /// # Errors
    /// `io::ErrorKind::InvalidData` when `input` is not a valid stream of this codec.
    fn decompress(&self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()>;
}

/// The codec implementation used for each Kafka codec id.
///
/// Cheap to clone (five `Option<Arc>`s). `Codecs::default()` holds every built-in codec
/// compiled into this build (zstd only with the default `zstd` feature).
#[derive(Clone)]
pub struct Codecs {
    slots: [Option<Arc<dyn Codec>>; 5],
}

impl Codecs {
    /// A registry with no implementation for any id except `none`.
    pub fn empty() -> Codecs {
        Codecs {
            slots: [None, None, None, None, None],
        }
    }

    /// Returns this registry with `codec` serving its id, replacing what was there.
    pub fn with(mut self, codec: Arc<dyn Codec>) -> Codecs {
        let slot = usize::from(codec.compression().id());
        self.slots[slot] = Some(codec);
        self
    }

    /// The implementation for `compression`, if this registry has one.
    ///
    /// `Compression::None` has no implementation; callers copy the bytes as they are.
    pub fn get(&self, compression: Compression) -> Option<&Arc<dyn Codec>> {
        self.slots[usize::from(compression.id())].as_ref()
    }

    /// Compresses `input` with `compression`, appending to `out`.
    ///
    /// # Errors
    /// [`DecodeError::CodecUnavailable`] when this registry has no implementation for it;
    /// [`DecodeError::Codec`] when the compressor fails.
    pub fn compress(
        &self,
        compression: Compression,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), DecodeError> {
        self.run(compression, input, out, |c, i, o| c.compress(i, o))
    }

    /// Decompresses `input` with `compression`, appending to `out`.
    ///
    /// # Errors
    /// [`DecodeError::CodecUnavailable`] when this registry has no implementation for it;
    /// [`DecodeError::Codec`] when `input` is not a valid stream.
    pub fn decompress(
        &self,
        compression: Compression,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), DecodeError> {
        self.run(compression, input, out, |c, i, o| c.decompress(i, o))
    }

    /// Copies `input` for `none`; otherwise runs `op` with the registered codec.
    fn run(
        &self,
        compression: Compression,
        input: &[u8],
        out: &mut Vec<u8>,
        op: impl Fn(&dyn Codec, &[u8], &mut Vec<u8>) -> io::Result<()>,
    ) -> Result<(), DecodeError> {
        if compression == Compression::None {
            out.extend_from_slice(input);
            return Ok(());
        }
        let codec = self
            .get(compression)
            .ok_or(DecodeError::CodecUnavailable { compression })?;
        op(codec.as_ref(), input, out).map_err(|e| DecodeError::Codec {
            compression,
            message: e.to_string(),
        })
    }
}

impl Default for Codecs {
    fn default() -> Codecs {
        let codecs = Codecs::empty()
            .with(Arc::new(codec::Gzip::default()))
            .with(Arc::new(codec::Snappy))
            .with(Arc::new(codec::Lz4));
        #[cfg(feature = "zstd")]
        let codecs = codecs.with(Arc::new(codec::Zstd::default()));
        codecs
    }
}

impl fmt::Debug for Codecs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_map();
        for c in Compression::ALL {
            list.entry(&c.name(), &self.get(c).is_some());
        }
        list.finish()
    }
}
