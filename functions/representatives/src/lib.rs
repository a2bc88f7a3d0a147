//! The routes of the `representatives` function: a state's senators and House seats.
//!
//! - `GET /representatives`: `{state, senators, seats}`, every seat listed, vacant or not.
//! - `GET /representatives?district=N`: `{state, senators, seat}`, the senators and that seat.
//!   District `0` is the at-large seat of states with a single seat, DC and the territories.

use represent::tenant::{Member, Seat, SeatTitle};
use represent::{Answer, ApiError, Function, Request, TenantData, state_json};
use serde::Serialize;
use serde_json::json;

/// The function as the shared invoke path runs it.
pub static FUNCTION: Function = Function {
    name: "representatives",
    default_path: "/representatives",
    route,
};

/// A House seat as callers see it: `vacant` says in so many words what a `null` representative
/// means, so that a client does not mistake a vacancy for missing data.
#[derive(Debug, Serialize)]
struct SeatView<'a> {
    district: u32,
    title: SeatTitle,
    vacant: bool,
    representative: Option<&'a Member>,
}

impl<'a> From<&'a Seat> for SeatView<'a> {
    fn from(seat: &'a Seat) -> Self {
        SeatView {
            district: seat.district,
            title: seat.title,
            vacant: seat.representative.is_none(),
            representative: seat.representative.as_ref(),
        }
    }
}

/// Answers one request for the tenant whose data this is.
pub fn route(request: &Request, data: &TenantData) -> Answer {
    if request.path != "/representatives" {
        return Err(ApiError::not_found(format!(
            "no route for `{}`: this function answers /representatives and /representatives?district=N",
            request.path
        )));
    }
    let file = data.file();
    let state = state_json(data);
    match request.param("district") {
        None => {
            let seats: Vec<SeatView> = file.seats.iter().map(SeatView::from).collect();
            Ok(json!({"state": state, "senators": file.senators, "seats": seats}))
        }
        Some(raw) => {
            let district: u32 = raw.trim().parse().map_err(|_| {
                ApiError::bad_request(format!("district must be a number, got {raw:?}"))
            })?;
            let seat = data.seat(district).ok_or_else(|| {
                ApiError::not_found(format!(
                    "district {district} does not exist: {}",
                    districts_of(data)
                ))
            })?;
            Ok(json!({"state": state, "senators": file.senators, "seat": SeatView::from(seat)}))
        }
    }
}

/// The valid districts, in words (`Texas has districts 1 to 38`), from the tenant's own seats.
fn districts_of(data: &TenantData) -> String {
    let districts = data.file().seats.iter().map(|s| s.district);
    match (districts.clone().min(), districts.max()) {
        (Some(0), _) => format!("{} has one at-large seat, district 0", data.name()),
        (Some(first), Some(last)) if first == last => {
            format!("{} has district {first} only", data.name())
        }
        (Some(first), Some(last)) => format!("{} has districts {first} to {last}", data.name()),
        _ => format!("{} has no House seats", data.name()),
    }
}
