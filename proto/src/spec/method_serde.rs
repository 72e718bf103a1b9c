//! Serde form of the `JobSpec.method` oneof: a map with exactly one of the keys
//! `contrastive` or `masked`. serde_yaml 0.9 reads externally tagged enums only as
//! YAML tags (`!masked`), so the oneof goes through a plain struct instead.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::v1::{ContrastiveMethod, MaskedMethod, job_spec::Method};

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MethodChoice {
    #[serde(skip_serializing_if = "Option::is_none")]
    contrastive: Option<ContrastiveMethod>,
    #[serde(skip_serializing_if = "Option::is_none")]
    masked: Option<MaskedMethod>,
}

impl Serialize for Method {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let choice = match *self {
            Method::Contrastive(contrastive) => MethodChoice { contrastive: Some(contrastive), masked: None },
            Method::Masked(masked) => MethodChoice { contrastive: None, masked: Some(masked) },
        };
        choice.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Method {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let choice = MethodChoice::deserialize(deserializer)?;
        match (choice.contrastive, choice.masked) {
            (Some(contrastive), None) => Ok(Method::Contrastive(contrastive)),
            (None, Some(masked)) => Ok(Method::Masked(masked)),
            (None, None) => Err(serde::de::Error::custom("expected one of the keys `contrastive` or `masked`")),
            (Some(_), Some(_)) => Err(serde::de::Error::custom("set only one of `contrastive` and `masked`")),
        }
    }
}
