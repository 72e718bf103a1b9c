//! The first bytes on each link: magic, generation and rank, so that a peer of
//! another generation or a stray connection is rejected before any data flows.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use crate::CollectiveError;

const MAGIC: [u8; 4] = *b"SSLR";
const VERSION: u8 = 1;
pub(crate) const HANDSHAKE_LEN: usize = 4 + 1 + 8 + 4;

pub(crate) fn encode(generation: u64, rank: usize) -> [u8; HANDSHAKE_LEN] {
    let mut bytes = [0u8; HANDSHAKE_LEN];
    bytes[..4].copy_from_slice(&MAGIC);
    bytes[4] = VERSION;
    bytes[5..13].copy_from_slice(&generation.to_le_bytes());
    bytes[13..17].copy_from_slice(&(rank as u32).to_le_bytes());
    bytes
}

/// Reads the peer's handshake and returns its rank.
pub(crate) fn read(stream: &mut TcpStream, address: SocketAddr, generation: u64) -> Result<usize, CollectiveError> {
    let mut bytes = [0u8; HANDSHAKE_LEN];
    stream
        .read_exact(&mut bytes)
        .map_err(|error| CollectiveError::Handshake { address, reason: error.to_string() })?;
    if bytes[..4] != MAGIC || bytes[4] != VERSION {
        return Err(CollectiveError::Handshake { address, reason: "not a collective link of this version".to_owned() });
    }
    let theirs = u64::from_le_bytes(bytes[5..13].try_into().expect("8 bytes"));
    if theirs != generation {
        return Err(CollectiveError::GenerationMismatch { address, ours: generation, theirs });
    }
    Ok(u32::from_le_bytes(bytes[13..17].try_into().expect("4 bytes")) as usize)
}

pub(crate) fn write(stream: &mut TcpStream, address: SocketAddr, generation: u64, rank: usize) -> Result<(), CollectiveError> {
    stream
        .write_all(&encode(generation, rank))
        .map_err(|error| CollectiveError::Handshake { address, reason: error.to_string() })
}
