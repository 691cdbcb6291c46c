//! The sandbox's test cards and how each one behaves.

use serde::{Deserialize, Serialize};

/// Which test card a billing key was registered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestCard {
    /// Every charge is approved (현대 credit card, personal).
    Ok,
    /// Every charge is approved (KB국민 check card, personal).
    Check,
    /// Every charge is approved (신한 credit card, corporate).
    Corporate,
    /// The first charge on a billing key is approved; every later one answers
    /// `403 REJECT_CARD_PAYMENT`.
    DeclineRenewals,
    /// Every charge answers `403 REJECT_CARD_PAYMENT`.
    DeclineAlways,
    /// Registration works; every charge answers `400 INVALID_STOPPED_CARD`.
    Stopped,
    /// Registration works; every charge answers `400 INVALID_CARD_EXPIRATION`.
    Expired,
    /// Registration fails with `INVALID_CARD_NUMBER`.
    InvalidNumber,
    /// Registration fails with `REJECT_CARD_COMPANY`.
    RejectCompany,
}

/// What a charge on a billing key from this card does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeBehaviour {
    Approve,
    DeclineAfterFirst(&'static str),
    Decline(&'static str),
}

/// Static facts about one test card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardProfile {
    pub card: TestCard,
    /// Stable id used in the billing-auth page (`card-<slug>`).
    pub slug: &'static str,
    pub label: &'static str,
    pub number: &'static str,
    pub issuer_code: &'static str,
    pub acquirer_code: &'static str,
    pub company: &'static str,
    pub card_type: &'static str,
    pub owner_type: &'static str,
    /// `Some(code)`: the card window refuses the card (and issuing from a minted authKey fails).
    pub registration_error: Option<&'static str>,
    pub charge: ChargeBehaviour,
}

impl TestCard {
    pub const ALL: [TestCard; 9] = [
        TestCard::Ok,
        TestCard::Check,
        TestCard::Corporate,
        TestCard::DeclineRenewals,
        TestCard::DeclineAlways,
        TestCard::Stopped,
        TestCard::Expired,
        TestCard::InvalidNumber,
        TestCard::RejectCompany,
    ];

    pub fn profile(self) -> CardProfile {
        let base = CardProfile {
            card: self,
            slug: "ok",
            label: "",
            number: "",
            issuer_code: "61",
            acquirer_code: "31",
            company: "현대",
            card_type: "신용",
            owner_type: "개인",
            registration_error: None,
            charge: ChargeBehaviour::Approve,
        };
        match self {
            TestCard::Ok => CardProfile {
                slug: "ok",
                label: "승인 카드 (always approves)",
                number: "4330123412341234",
                ..base
            },
            TestCard::Check => CardProfile {
                slug: "check",
                label: "체크카드 (check card, always approves)",
                number: "5327432112340002",
                issuer_code: "11",
                acquirer_code: "11",
                company: "국민",
                card_type: "체크",
                ..base
            },
            TestCard::Corporate => CardProfile {
                slug: "corporate",
                label: "법인카드 (corporate card, always approves)",
                number: "4518441234560003",
                issuer_code: "41",
                acquirer_code: "41",
                company: "신한",
                owner_type: "법인",
                ..base
            },
            TestCard::DeclineRenewals => CardProfile {
                slug: "decline-renewals",
                label: "첫 결제만 승인 (first charge only, renewals declined)",
                number: "5585261234560004",
                issuer_code: "51",
                acquirer_code: "51",
                company: "삼성",
                charge: ChargeBehaviour::DeclineAfterFirst("REJECT_CARD_PAYMENT"),
                ..base
            },
            TestCard::DeclineAlways => CardProfile {
                slug: "decline-always",
                label: "잔액부족 카드 (every charge declined)",
                number: "5376981234560005",
                issuer_code: "71",
                acquirer_code: "71",
                company: "롯데",
                charge: ChargeBehaviour::Decline("REJECT_CARD_PAYMENT"),
                ..base
            },
            TestCard::Stopped => CardProfile {
                slug: "stopped",
                label: "정지 카드 (stopped card: registers, never charges)",
                number: "9410611234560006",
                issuer_code: "31",
                acquirer_code: "31",
                company: "BC",
                charge: ChargeBehaviour::Decline("INVALID_STOPPED_CARD"),
                ..base
            },
            TestCard::Expired => CardProfile {
                slug: "expired",
                label: "유효기간 만료 카드 (expired: registers, never charges)",
                number: "4673091234560007",
                issuer_code: "21",
                acquirer_code: "21",
                company: "하나",
                charge: ChargeBehaviour::Decline("INVALID_CARD_EXPIRATION"),
                ..base
            },
            TestCard::InvalidNumber => CardProfile {
                slug: "invalid-number",
                label: "잘못된 카드번호 (registration fails: INVALID_CARD_NUMBER)",
                number: "1111222233334444",
                registration_error: Some("INVALID_CARD_NUMBER"),
                ..base
            },
            TestCard::RejectCompany => CardProfile {
                slug: "reject-company",
                label: "카드사 거절 (registration fails: REJECT_CARD_COMPANY)",
                number: "6253221234560009",
                issuer_code: "91",
                acquirer_code: "91",
                company: "농협",
                registration_error: Some("REJECT_CARD_COMPANY"),
                ..base
            },
        }
    }

    /// Parse the snake_case name (`"decline_renewals"`) or the page slug (`"decline-renewals"`).
    pub fn parse(name: &str) -> Option<TestCard> {
        let normalized = name.trim().replace('-', "_");
        TestCard::ALL.into_iter().find(|card| {
            serde_json::to_value(card)
                .ok()
                .and_then(|value| value.as_str().map(|s| s == normalized))
                .unwrap_or(false)
        })
    }

    /// Look a card up by its number (dashes and spaces ignored).
    pub fn from_number(number: &str) -> Option<TestCard> {
        let digits: String = number.chars().filter(char::is_ascii_digit).collect();
        TestCard::ALL
            .into_iter()
            .find(|card| card.profile().number == digits)
    }
}

impl CardProfile {
    /// Toss's mask: first 8 digits, `****`, three digits, `*` (e.g. `43301234****123*`).
    pub fn masked_number(&self) -> String {
        let n = self.number;
        match (n.get(..8), n.get(12..15)) {
            (Some(head), Some(tail)) => format!("{head}****{tail}*"),
            _ => "****".to_owned(),
        }
    }

    /// The number grouped by four, as printed in the card window.
    pub fn display_number(&self) -> String {
        self.number
            .as_bytes()
            .chunks(4)
            .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
            .collect::<Vec<_>>()
            .join("-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_always_approving_card_is_masked_like_the_docs_example() {
        assert_eq!(TestCard::Ok.profile().masked_number(), "43301234****123*");
    }

    #[test]
    fn a_card_parses_from_its_name_and_its_page_slug() {
        assert_eq!(
            TestCard::parse("decline_renewals"),
            Some(TestCard::DeclineRenewals)
        );
        assert_eq!(
            TestCard::parse("decline-renewals"),
            Some(TestCard::DeclineRenewals)
        );
        assert_eq!(TestCard::parse("nope"), None);
    }

    #[test]
    fn a_card_is_found_by_its_dashed_number() {
        assert_eq!(
            TestCard::from_number("4330-1234-1234-1234"),
            Some(TestCard::Ok)
        );
    }

    #[test]
    fn every_card_has_a_distinct_sixteen_digit_number_and_slug() {
        let mut numbers: Vec<_> = TestCard::ALL.iter().map(|c| c.profile().number).collect();
        let mut slugs: Vec<_> = TestCard::ALL.iter().map(|c| c.profile().slug).collect();
        assert!(numbers.iter().all(|n| n.len() == 16));
        numbers.sort_unstable();
        numbers.dedup();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(numbers.len(), TestCard::ALL.len());
        assert_eq!(slugs.len(), TestCard::ALL.len());
    }
}
