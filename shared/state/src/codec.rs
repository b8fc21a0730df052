use crate::ContactState;

/// Why stored state bytes could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("contact state is not decodable: {0}")]
pub struct CodecError(#[from] postcard::Error);

impl ContactState {
    /// Encodes the state compactly (postcard: varints, no field names).
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("contact state always encodes")
    }

    /// Decodes state written by [`ContactState::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<ContactState, CodecError> {
        Ok(postcard::from_bytes(bytes)?)
    }
}
