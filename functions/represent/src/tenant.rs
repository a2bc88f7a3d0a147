//! The tenant file (`tenants/<ID>.json`): its serde types, shared by the importer and the
//! functions, and `validate`, which lists every problem in one file.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Longest tenant id Lambda accepts (`X-Amz-Tenant-Id`, API_Invoke.html).
pub const MAX_TENANT_ID_LEN: usize = 256;

/// One tenant of Represent: a state, the District of Columbia or a territory, with its counties,
/// its senators and its House seats. Unknown fields are rejected so that a typo in a hand-edited
/// file is an error rather than silently missing data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantFile {
    /// The USPS code (`TX`), which is also the Lambda tenant id.
    pub id: String,
    pub name: String,
    pub kind: TenantKind,
    /// The 2-digit state FIPS code, with its leading zero (`"01"`).
    pub fips: String,
    /// Census region (`"South"`); `None` for territories, which have none.
    pub region: Option<String>,
    /// Census division (`"South Atlantic"`); `None` for territories.
    pub division: Option<String>,
    /// Counties and county-equivalents, sorted by FIPS.
    pub counties: Vec<County>,
    /// Zero to two senators, sorted by bioguide id. A vacant Senate seat has no entry.
    pub senators: Vec<Member>,
    /// Every House seat, sorted by district, vacant or not.
    pub seats: Vec<Seat>,
}

/// What sort of jurisdiction a tenant is; it decides which senators and seats it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantKind {
    /// One of the 50 states: two Senate seats, one or more House seats.
    State,
    /// The District of Columbia: no senators, one non-voting delegate.
    District,
    /// A territory (AS, GU, MP, PR, VI): no senators, one delegate or resident commissioner.
    Territory,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct County {
    /// The 5-digit county FIPS code, starting with the state's 2 digits (`"01001"`).
    pub fips: String,
    pub name: String,
}

/// A seat in the House of Representatives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seat {
    /// The district number; `0` is the single at-large seat.
    pub district: u32,
    pub title: SeatTitle,
    /// Who holds the seat; `None` while it is vacant.
    pub representative: Option<Member>,
}

/// The title of whoever holds a House seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeatTitle {
    Representative,
    Delegate,
    #[serde(rename = "Resident Commissioner")]
    ResidentCommissioner,
}

/// A member of Congress as a constituent reaches them. Optional fields are `null` when the source
/// data does not know them (a member sworn in last week may have no office yet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub name: String,
    pub party: String,
    /// The Washington office phone.
    pub phone: Option<String>,
    pub website: Option<String>,
    /// The Washington office postal address.
    pub office: Option<String>,
    pub contact_form: Option<String>,
    /// The Congressional Biographical Directory id (`C000127`), stable across terms.
    pub bioguide: String,
    /// Offices in the home state, sorted by the source's office id.
    pub district_offices: Vec<DistrictOffice>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistrictOffice {
    pub address: Option<String>,
    pub suite: Option<String>,
    pub building: Option<String>,
    pub city: String,
    pub state: String,
    pub zip: Option<String>,
    pub phone: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

/// Whether `id` is accepted by Lambda as a tenant id: 1 to 256 characters of
/// `[a-zA-Z0-9._:/=+-@ ]`. Such ids are outside data: `../x` is valid and must never reach a path.
pub fn is_valid_tenant_id(id: &str) -> bool {
    (1..=MAX_TENANT_ID_LEN).contains(&id.chars().count())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:/=+-@ ".contains(c))
}

/// Every problem in one tenant file, in a stable order; empty when the file is good. The messages
/// name the offending value so that a reader can find it in the file.
pub fn validate(t: &TenantFile) -> Vec<String> {
    let mut problems = Vec::new();

    if !is_valid_tenant_id(&t.id) {
        problems.push(format!(
            "id `{}` is not a valid Lambda tenant id (1 to 256 characters of [a-zA-Z0-9._:/=+-@ ])",
            t.id
        ));
    } else if !(t.id.len() == 2 && t.id.bytes().all(|b| b.is_ascii_uppercase())) {
        problems.push(format!(
            "id `{}` is not a USPS code (two uppercase letters)",
            t.id
        ));
    }
    if t.name.trim().is_empty() {
        problems.push("name is empty".to_string());
    }
    let fips_ok = is_digits(&t.fips, 2);
    if !fips_ok {
        problems.push(format!("state FIPS `{}` is not 2 digits", t.fips));
    }

    match t.kind {
        TenantKind::State | TenantKind::District => {
            if t.region.is_none() {
                problems.push(format!("region is missing for a {}", kind_name(t.kind)));
            }
            if t.division.is_none() {
                problems.push(format!("division is missing for a {}", kind_name(t.kind)));
            }
            if t.counties.is_empty() {
                problems.push(format!("a {} has no counties", kind_name(t.kind)));
            }
        }
        TenantKind::Territory => {
            if t.region.is_some() || t.division.is_some() {
                problems.push("a territory has no Census region or division".to_string());
            }
        }
    }

    validate_counties(t, fips_ok, &mut problems);
    validate_senators(t, &mut problems);
    validate_seats(t, &mut problems);

    let mut bioguides = BTreeSet::new();
    let members = t
        .senators
        .iter()
        .chain(t.seats.iter().filter_map(|s| s.representative.as_ref()));
    for m in members {
        if m.name.trim().is_empty() {
            problems.push(format!("member `{}` has an empty name", m.bioguide));
        }
        if m.party.trim().is_empty() {
            problems.push(format!("member `{}` has an empty party", m.bioguide));
        }
        if m.bioguide.trim().is_empty() {
            problems.push(format!("member `{}` has an empty bioguide id", m.name));
        } else if !bioguides.insert(m.bioguide.as_str()) {
            problems.push(format!(
                "member `{}` ({}) appears more than once",
                m.bioguide, m.name
            ));
        }
    }
    problems
}

fn validate_counties(t: &TenantFile, fips_ok: bool, problems: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    let mut previous: Option<&str> = None;
    for c in &t.counties {
        if !is_digits(&c.fips, 5) {
            problems.push(format!("county FIPS `{}` is not 5 digits", c.fips));
        } else if fips_ok && !c.fips.starts_with(&t.fips) {
            problems.push(format!(
                "county FIPS `{}` ({}) belongs to another state: it does not start with state FIPS `{}`",
                c.fips, c.name, t.fips
            ));
        }
        if c.name.trim().is_empty() {
            problems.push(format!("county `{}` has an empty name", c.fips));
        }
        if !seen.insert(c.fips.as_str()) {
            problems.push(format!("duplicate county FIPS `{}`", c.fips));
        } else if previous.is_some_and(|p| p > c.fips.as_str()) {
            problems.push(format!("county `{}` is out of FIPS order", c.fips));
        }
        previous = Some(c.fips.as_str());
    }
}

fn validate_senators(t: &TenantFile, problems: &mut Vec<String>) {
    let allowed = match t.kind {
        TenantKind::State => 2,
        TenantKind::District | TenantKind::Territory => 0,
    };
    if t.senators.len() > allowed {
        problems.push(format!(
            "a {} has at most {allowed} senators, found {}",
            kind_name(t.kind),
            t.senators.len()
        ));
    }
}

fn validate_seats(t: &TenantFile, problems: &mut Vec<String>) {
    let districts: Vec<u32> = t.seats.iter().map(|s| s.district).collect();
    let at_large = districts == [0];
    let numbered =
        !districts.is_empty() && districts.iter().copied().eq(1..=districts.len() as u32);
    if !at_large && !numbered {
        problems.push(format!(
            "districts {districts:?} are neither exactly [0] (at-large) nor exactly 1..=n in order without gaps or duplicates"
        ));
    }
    if t.kind != TenantKind::State && !at_large {
        problems.push(format!(
            "a {} has one at-large seat (district 0), found districts {districts:?}",
            kind_name(t.kind)
        ));
    }
    for s in &t.seats {
        let representative = s.title == SeatTitle::Representative;
        if representative != (t.kind == TenantKind::State) {
            problems.push(format!(
                "district {} of a {} cannot have the title {:?}",
                s.district,
                kind_name(t.kind),
                s.title
            ));
        }
    }
}

fn kind_name(kind: TenantKind) -> &'static str {
    match kind {
        TenantKind::State => "state",
        TenantKind::District => "district",
        TenantKind::Territory => "territory",
    }
}

fn is_digits(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(bioguide: &str) -> Member {
        Member {
            name: format!("Member {bioguide}"),
            party: "Independent".to_string(),
            phone: None,
            website: None,
            office: None,
            contact_form: None,
            bioguide: bioguide.to_string(),
            district_offices: Vec::new(),
        }
    }

    fn seat(district: u32, holder: Option<&str>) -> Seat {
        Seat {
            district,
            title: SeatTitle::Representative,
            representative: holder.map(member),
        }
    }

    fn county(fips: &str) -> County {
        County {
            fips: fips.to_string(),
            name: format!("County {fips}"),
        }
    }

    /// A small, valid state: three districts, the second one vacant.
    fn fixture() -> TenantFile {
        TenantFile {
            id: "NM".to_string(),
            name: "New Mexico".to_string(),
            kind: TenantKind::State,
            fips: "35".to_string(),
            region: Some("West".to_string()),
            division: Some("Mountain".to_string()),
            counties: vec![county("35001"), county("35013")],
            senators: vec![member("S1"), member("S2")],
            seats: vec![seat(1, Some("R1")), seat(2, None), seat(3, Some("R3"))],
        }
    }

    fn assert_reported(t: &TenantFile, needle: &str) {
        let problems = validate(t);
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "expected a problem mentioning {needle:?}, got {problems:?}"
        );
    }

    #[test]
    fn a_good_state_with_a_vacancy_validates() {
        assert_eq!(validate(&fixture()), Vec::<String>::new());
    }

    #[test]
    fn duplicate_county_fips_is_reported() {
        let mut t = fixture();
        t.counties.push(county("35013"));
        assert_reported(&t, "duplicate county FIPS `35013`");
    }

    #[test]
    fn county_of_another_state_is_reported() {
        let mut t = fixture();
        t.counties.push(county("48001"));
        assert_reported(&t, "county FIPS `48001`");
        assert_reported(&t, "belongs to another state");
    }

    #[test]
    fn gap_in_districts_is_reported() {
        let mut t = fixture();
        t.seats.remove(1);
        assert_reported(&t, "districts [1, 3]");
    }

    #[test]
    fn duplicate_district_is_reported() {
        let mut t = fixture();
        t.seats.push(seat(3, None));
        assert_reported(&t, "districts [1, 2, 3, 3]");
    }

    #[test]
    fn at_large_mixed_with_numbered_districts_is_reported() {
        let mut t = fixture();
        t.seats.insert(0, seat(0, None));
        assert_reported(&t, "districts [0, 1, 2, 3]");
    }

    #[test]
    fn invalid_tenant_id_is_reported() {
        let mut t = fixture();
        t.id = "N*M".to_string();
        assert_reported(&t, "id `N*M` is not a valid Lambda tenant id");
        t.id = String::new();
        assert_reported(&t, "id `` is not a valid Lambda tenant id");
    }

    #[test]
    fn lambda_valid_id_that_is_not_a_usps_code_is_reported() {
        let mut t = fixture();
        t.id = "../x".to_string();
        assert_reported(&t, "id `../x` is not a USPS code");
    }

    #[test]
    fn short_state_fips_is_reported() {
        let mut t = fixture();
        t.fips = "1".to_string();
        assert_reported(&t, "state FIPS `1` is not 2 digits");
    }

    #[test]
    fn third_senator_is_reported() {
        let mut t = fixture();
        t.senators.push(member("S3"));
        assert_reported(&t, "at most 2 senators, found 3");
    }

    #[test]
    fn territory_with_a_senator_or_numbered_seats_is_reported() {
        let mut t = fixture();
        t.kind = TenantKind::Territory;
        t.region = None;
        t.division = None;
        assert_reported(&t, "a territory has at most 0 senators, found 2");
        assert_reported(&t, "a territory has one at-large seat");
        assert_reported(&t, "cannot have the title Representative");
    }

    #[test]
    fn member_listed_twice_is_reported() {
        let mut t = fixture();
        t.seats[1].representative = Some(member("S1"));
        assert_reported(&t, "member `S1` (Member S1) appears more than once");
    }

    #[test]
    fn every_problem_is_listed_not_only_the_first() {
        let mut t = fixture();
        t.id = "bad id!".to_string();
        t.counties.push(county("48001"));
        t.seats.remove(1);
        assert_eq!(validate(&t).len(), 3, "{:?}", validate(&t));
    }

    #[test]
    fn tenant_ids_follow_lambda_rules() {
        assert!(is_valid_tenant_id("TX"));
        assert!(is_valid_tenant_id("../x"));
        assert!(is_valid_tenant_id("a.b_c:d/e=f+g-h@i j"));
        assert!(is_valid_tenant_id(&"a".repeat(256)));
        assert!(!is_valid_tenant_id(&"a".repeat(257)));
        assert!(!is_valid_tenant_id(""));
        assert!(!is_valid_tenant_id("a,b"));
        assert!(!is_valid_tenant_id("Doña"));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let mut json = serde_json::to_value(fixture()).expect("fixture serializes");
        json["countys"] = serde_json::json!([]);
        let err = serde_json::from_value::<TenantFile>(json).expect_err("typo must be rejected");
        assert!(err.to_string().contains("countys"), "{err}");
    }

    #[test]
    fn seat_titles_use_their_spoken_names() {
        let json = serde_json::to_string(&SeatTitle::ResidentCommissioner).expect("serializes");
        assert_eq!(json, "\"Resident Commissioner\"");
    }
}
