//! Networks: the tabular encoder and the method-specific heads.

pub mod encoder;
pub mod heads;
pub mod input;

pub use encoder::{EncoderConfig, TabularEncoder};
pub use heads::{MaskedHeads, MaskedOutput, ProjectionHead};
pub use input::{EncoderInput, encoder_input};
