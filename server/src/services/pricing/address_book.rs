//! A customer's address book (`/api/users/me/addresses`), and how an order,
//! a quote or a cart names one of its addresses instead of writing it out.
//!
//! A saved address is checked as a checkout checks any address, so one
//! taken from the book never fails at checkout for its form. Its fields are
//! copied where it is used: the book can change without moving an order.

use shop_wire::UserId;
use shop_wire::addresses::{AddressId, CartCheckout, NewSavedAddress, SavedAddress};
use shop_wire::events::{EventData, ProfileUpdateEvent};
use shop_wire::pricing::PostalAddress;

use super::address::check_address;
use super::domain::Asked;
use crate::services::error::{DomainError, DomainResult};
use crate::state::AppState;
use crate::store::{AddressSave, NewEvent, now};

/// The most addresses one customer keeps: enough for home, work, family
/// and a few gift recipients, few enough that a checkout lists them all.
pub const MAX_SAVED_ADDRESSES: usize = 20;

/// How a request names an address: written out, by a saved address's id,
/// or not at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressChoice {
    Given(PostalAddress),
    Saved(AddressId),
    Neither,
}

/// The choice a request makes at `at` (`shipping_address`), refusing one
/// that gives both forms.
pub fn choose(
    at: &str,
    given: Option<PostalAddress>,
    saved: Option<AddressId>,
) -> DomainResult<AddressChoice> {
    match (given, saved) {
        (Some(_), Some(_)) => Err(DomainError::validation(
            &format!("{at}_id"),
            format!("give {at} or {at}_id, not both"),
        )),
        (Some(address), None) => Ok(AddressChoice::Given(address)),
        (None, Some(id)) => Ok(AddressChoice::Saved(id)),
        (None, None) => Ok(AddressChoice::Neither),
    }
}

/// The address a choice names: a saved one must be `owner`'s (another
/// customer's id is not found, so ids cannot be probed).
pub async fn resolve(
    state: &AppState,
    owner: &UserId,
    choice: AddressChoice,
) -> DomainResult<Option<PostalAddress>> {
    match choice {
        AddressChoice::Given(address) => Ok(Some(address)),
        AddressChoice::Neither => Ok(None),
        AddressChoice::Saved(id) => state
            .store
            .address(owner, &id)
            .await?
            .map(|saved| Some(saved.address))
            .ok_or_else(|| DomainError::not_found(format!("address {id}"))),
    }
}

/// What an order or a quote asks for where it goes, completed: saved
/// addresses named by id are `owner`'s, and what the request leaves out
/// (no address in either form, no method) is what the cart keeps.
pub async fn complete(
    state: &AppState,
    owner: &UserId,
    mut asked: Asked,
    saved: [Option<AddressId>; 2],
    cart: Option<CartCheckout>,
) -> DomainResult<Asked> {
    let [shipping_id, billing_id] = saved;
    let shipping = choose(
        "shipping_address",
        asked.shipping_address.take(),
        shipping_id,
    )?;
    let billing = choose("billing_address", asked.billing_address.take(), billing_id)?;
    let cart = cart.unwrap_or_default();
    // A quote's bare destination is a choice too: the cart's address does not override it.
    let shipping = match shipping {
        AddressChoice::Neither if asked.destination.is_none() => cart
            .shipping_address
            .map_or(AddressChoice::Neither, AddressChoice::Given),
        choice => choice,
    };
    let billing = match billing {
        AddressChoice::Neither => cart
            .billing_address
            .map_or(AddressChoice::Neither, AddressChoice::Given),
        choice => choice,
    };
    asked.shipping_address = resolve(state, owner, shipping).await?;
    asked.billing_address = resolve(state, owner, billing).await?;
    asked.shipping_method = asked.shipping_method.or(cart.shipping_method);
    Ok(asked)
}

pub async fn list(state: &AppState, owner: &UserId) -> DomainResult<Vec<SavedAddress>> {
    Ok(state.store.addresses(owner).await?)
}

/// The event of a change to the book: which part of the profile changed,
/// never the address itself.
fn book_changed(owner: &UserId) -> Vec<NewEvent> {
    vec![NewEvent::now(EventData::UserUpdated(ProfileUpdateEvent {
        user_id: owner.clone(),
        fields: vec!["address_book".to_owned()],
        name: None,
        address_count: None,
    }))]
}

/// Saves an address to `owner`'s book; 409 `address_book_full` past
/// [`MAX_SAVED_ADDRESSES`].
pub async fn save(
    state: &AppState,
    owner: &UserId,
    request: NewSavedAddress,
) -> DomainResult<SavedAddress> {
    let saved = SavedAddress {
        id: AddressId::generate(),
        address: check_address("address", request.address)?,
        default_shipping: request.default_shipping,
        default_billing: request.default_billing,
        created_at: now(),
    };
    let events = book_changed(owner);
    match state
        .store
        .insert_address(owner, &saved, MAX_SAVED_ADDRESSES, events)
        .await?
    {
        AddressSave::Saved => Ok(saved),
        AddressSave::Full { max } => Err(DomainError::Conflict {
            code: "address_book_full",
            message: format!("an address book holds at most {max} addresses; delete one first"),
            details: serde_json::json!({ "max_addresses": max }),
        }),
    }
}

/// Deletes one of `owner`'s addresses; orders and carts that used it keep their copy.
pub async fn delete(state: &AppState, owner: &UserId, raw: &str) -> DomainResult<SavedAddress> {
    let not_found = || DomainError::not_found(format!("address {raw}"));
    let id: AddressId = raw.parse().map_err(|_| not_found())?;
    state
        .store
        .delete_address(owner, &id, book_changed(owner))
        .await?
        .ok_or_else(not_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_given_one_way_at_most() {
        let address = PostalAddress {
            country: "DE".to_owned(),
            ..PostalAddress::default()
        };
        let id = AddressId::generate();
        assert_eq!(
            choose("shipping_address", Some(address.clone()), None).expect("given"),
            AddressChoice::Given(address.clone())
        );
        assert_eq!(
            choose("shipping_address", None, Some(id.clone())).expect("saved"),
            AddressChoice::Saved(id.clone())
        );
        assert_eq!(
            choose("billing_address", None, None).expect("neither"),
            AddressChoice::Neither
        );
        let both = choose("billing_address", Some(address), Some(id)).unwrap_err();
        assert!(both.to_string().contains("billing_address_id"), "{both}");
    }
}
