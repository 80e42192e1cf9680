//! The storage interface of customers' address books.

use async_trait::async_trait;
use shop_wire::UserId;
use shop_wire::addresses::{AddressId, SavedAddress};

use super::{NewEvent, StoreResult};

/// How saving an address ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressSave {
    /// Saved; a default flag it has was taken from the address that had it.
    Saved,
    /// The book already holds `max` addresses; nothing was written.
    Full { max: usize },
}

#[async_trait]
pub trait AddressStore: Send + Sync {
    /// The user's saved addresses, oldest first.
    async fn addresses(&self, user: &UserId) -> StoreResult<Vec<SavedAddress>>;
    /// One of the user's addresses; `None` when there is none with this id
    /// or it is another user's.
    async fn address(&self, user: &UserId, id: &AddressId) -> StoreResult<Option<SavedAddress>>;
    /// Saves an address for the user and logs `events`, unless the book
    /// already holds `max` (counted in the same write, so racing saves never
    /// pass it). Each default flag it has moves to it from the address that
    /// had it, so a book has at most one default of each kind.
    async fn insert_address(
        &self,
        user: &UserId,
        address: &SavedAddress,
        max: usize,
        events: Vec<NewEvent>,
    ) -> StoreResult<AddressSave>;
    /// Removes one of the user's addresses and logs `events`; `None` when the
    /// user has no address with this id (another user's is not touched).
    async fn delete_address(
        &self,
        user: &UserId,
        id: &AddressId,
        events: Vec<NewEvent>,
    ) -> StoreResult<Option<SavedAddress>>;
}
