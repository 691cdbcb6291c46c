//! The Billing object returned when a billing key is issued (docs/toss-api.md §2.1).

use std::fmt;

use domain::BillingKey;
use serde::{Deserialize, Deserializer};

/// A newly issued billing key and the card behind it. `Debug` masks the billing key and card
/// number; unknown fields are ignored.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Billing {
    pub customer_key: String,
    #[serde(deserialize_with = "billing_key")]
    pub billing_key: BillingKey,
    /// A Korean string such as `"카드"`.
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub card: Option<BillingCard>,
    /// ISO 8601 with offset, as Toss sent it.
    #[serde(default)]
    pub authenticated_at: Option<String>,
    #[serde(default)]
    pub m_id: Option<String>,
    /// Deprecated: removed from responses in API version 2024-06-01; use `card.issuer_code`.
    #[serde(default)]
    pub card_company: Option<String>,
    /// Deprecated: removed from responses in API version 2024-06-01; use `card.number`.
    #[serde(default)]
    pub card_number: Option<String>,
}

fn billing_key<'de, D: Deserializer<'de>>(d: D) -> Result<BillingKey, D::Error> {
    let raw = String::deserialize(d)?;
    // The refusal names the field and problem only, never the value.
    BillingKey::parse(raw).map_err(serde::de::Error::custom)
}

impl fmt::Debug for Billing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Billing")
            .field("customer_key", &self.customer_key)
            .field("billing_key", &self.billing_key)
            .field("method", &self.method)
            .field("card", &self.card)
            .field("authenticated_at", &self.authenticated_at)
            .field("m_id", &self.m_id)
            .field("card_company", &self.card_company)
            .finish_non_exhaustive()
    }
}

/// `card` of a Billing object. `Debug` leaves out the (masked) card number.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingCard {
    /// Two characters, e.g. `"61"` or `"3K"`.
    #[serde(default)]
    pub issuer_code: Option<String>,
    #[serde(default)]
    pub acquirer_code: Option<String>,
    /// Masked by Toss, e.g. `43301234****123*`.
    #[serde(default)]
    pub number: Option<String>,
    /// 신용/체크/기프트
    #[serde(default)]
    pub card_type: Option<String>,
    /// 개인/법인
    #[serde(default)]
    pub owner_type: Option<String>,
}

impl fmt::Debug for BillingCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BillingCard")
            .field("issuer_code", &self.issuer_code)
            .field("acquirer_code", &self.acquirer_code)
            .field("card_type", &self.card_type)
            .field("owner_type", &self.owner_type)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WITHOUT_DEPRECATED_FIELDS: &str = r#"{
        "mId": "tosspayments", "customerKey": "cust_1", "authenticatedAt": "2021-01-01T10:00:00+09:00",
        "method": "카드", "billingKey": "Z_t5vOvQxrj4499PeiJcjen28-V2RyqgYTwN44Rdzk0=",
        "card": {"issuerCode": "3K", "number": "43301234****123*"}, "transfers": null, "brandNew": 1
    }"#;

    #[test]
    fn a_billing_object_from_api_version_2024_06_01_parses_without_card_company() {
        let billing: Billing = serde_json::from_str(WITHOUT_DEPRECATED_FIELDS).unwrap();
        assert_eq!(billing.card_company, None);
        assert_eq!(billing.card_number, None);
        assert_eq!(
            billing.card.and_then(|c| c.issuer_code).as_deref(),
            Some("3K")
        );
    }

    #[test]
    fn debug_masks_the_billing_key_and_card_number() {
        let billing: Billing = serde_json::from_str(WITHOUT_DEPRECATED_FIELDS).unwrap();
        let shown = format!("{billing:?}");
        assert!(!shown.contains("Z_t5vOvQ"), "{shown}");
        assert!(!shown.contains("43301234"), "{shown}");
        assert!(shown.contains("cust_1"), "{shown}");
    }

    #[test]
    fn an_invalid_billing_key_is_refused_without_echoing_it() {
        let json = r#"{"customerKey":"c1","billingKey":"has spaces secret"}"#;
        let err = serde_json::from_str::<Billing>(json).unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
