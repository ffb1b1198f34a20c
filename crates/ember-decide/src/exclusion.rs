//! The exclusion policy ([`Known`]) as people write it and as outputs name it, so that every
//! command and the HTTP API read the same three words and print the same wording:
//!
//! | written | policy | named in outputs (`excluded`) |
//! |---|---|---|
//! | `all` (the default) | [`Known::Exclude`] | `all known interactions` |
//! | `none` | [`Known::Include`] | `none` |
//! | `since:YYYY-MM-DD` | [`Known::Since`] | `known interactions since YYYY-MM-DD` |

use crate::table::{format_day, parse_day};
use crate::{DecideError, Known};

/// How the policies are written, for error messages.
const WRITTEN: &str = "all, none or since:YYYY-MM-DD";

/// Reads a policy written as `all`, `none` or `since:YYYY-MM-DD` (only a date: a bare day
/// number is too easily a typo for one).
pub fn parse_exclusion(text: &str) -> Result<Known, DecideError> {
    match text.trim() {
        "all" => Ok(Known::Exclude),
        "none" => Ok(Known::Include),
        other => {
            let Some(date) = other.strip_prefix("since:") else {
                return Err(DecideError::Invalid(format!(
                    "`{text}` is not an exclusion policy: use {WRITTEN}"
                )));
            };
            let day = Some(date.trim())
                .filter(|d| d.contains('-'))
                .and_then(parse_day)
                .and_then(|d| i32::try_from(d).ok());
            day.map(Known::Since).ok_or_else(|| {
                DecideError::Invalid(format!(
                    "`{text}`: `{date}` is not a date; write since:YYYY-MM-DD"
                ))
            })
        }
    }
}

/// The policy as outputs name it (see the module docs).
pub fn describe_exclusion(policy: Known) -> String {
    match policy {
        Known::Exclude => "all known interactions".into(),
        Known::Include => "none".into(),
        Known::Since(day) => format!("known interactions since {}", format_day(day.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_read_back_as_written_and_bad_ones_say_what_to_write() {
        assert_eq!(parse_exclusion("all").unwrap(), Known::Exclude);
        assert_eq!(parse_exclusion("none").unwrap(), Known::Include);
        // 1998-03-01 is day 10,286 (27 years of 365 days, 7 leap days, 59 days of 1998).
        assert_eq!(
            parse_exclusion("since:1998-03-01").unwrap(),
            Known::Since(10_286)
        );
        assert_eq!(describe_exclusion(Known::Exclude), "all known interactions");
        assert_eq!(describe_exclusion(Known::Include), "none");
        assert_eq!(
            describe_exclusion(Known::Since(10_286)),
            "known interactions since 1998-03-01"
        );
        for (bad, message) in [
            (
                "sometimes",
                "`sometimes` is not an exclusion policy: use all, none or since:YYYY-MM-DD",
            ),
            (
                "since:1998-02-30",
                "`since:1998-02-30`: `1998-02-30` is not a date; write since:YYYY-MM-DD",
            ),
            (
                "since:10286",
                "`since:10286`: `10286` is not a date; write since:YYYY-MM-DD",
            ),
            (
                "since:",
                "`since:`: `` is not a date; write since:YYYY-MM-DD",
            ),
        ] {
            assert_eq!(parse_exclusion(bad).unwrap_err().to_string(), message);
        }
    }
}
