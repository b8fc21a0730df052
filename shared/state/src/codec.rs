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

    /// Decodes state written by [`ContactState::to_bytes`], also by builds that
    /// did not keep holds yet (their states end before it: none recorded).
    pub fn from_bytes(bytes: &[u8]) -> Result<ContactState, CodecError> {
        match postcard::from_bytes(bytes) {
            Err(postcard::Error::DeserializeUnexpectedEnd) => {
                let mut with_no_holds = bytes.to_vec();
                with_no_holds.push(0);
                postcard::from_bytes(&with_no_holds).map_err(|_| postcard::Error::DeserializeUnexpectedEnd.into())
            }
            decoded => Ok(decoded?),
        }
    }
}
