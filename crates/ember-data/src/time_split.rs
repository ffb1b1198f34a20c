//! The time-based split: training before a validation window, validation in it, test on or
//! after a cutoff date (a backtest). Dates are parsed here, by hand, so that the split adds
//! no dependency and names its own errors.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::{DataError, IdMap, Interactions, Result, TimeUnit};

const NANOS_PER_SECOND: i128 = 1_000_000_000;
const SECONDS_PER_DAY: i128 = 86_400;

/// What the time split left out and whom it scores, for `ember data stats`, `data.json` and
/// the run log. A user or item without a training interaction (first seen on or after the
/// validation window's start) has no id: an id model cannot score it, so its interactions are
/// counted here and not evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeSplitStats {
    /// The start of the validation window, UTC (RFC 3339).
    pub valid_start: String,
    /// The cutoff, UTC (RFC 3339): test interactions are on or after it.
    pub cutoff: String,
    /// Users with at least one test item (active after the cutoff, with a training history).
    pub test_users: usize,
    /// Users with validation-window interactions and no training interaction.
    pub new_users_valid: usize,
    /// Items with validation-window interactions and no training interaction.
    pub new_items_valid: usize,
    /// Users active on or after the cutoff with no training interaction.
    pub new_users_test: usize,
    /// Items taken on or after the cutoff with no training interaction.
    pub new_items_test: usize,
    /// Validation-window interactions of a new user or a new item, not evaluated.
    pub interactions_left_out_valid: usize,
    /// Interactions on or after the cutoff of a new user or a new item, not evaluated.
    pub interactions_left_out_test: usize,
}

/// A time split resolved against its data: where the parts begin, in the data's own unit,
/// and the known items each held-out part may mask (those taken before it).
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSplit {
    /// The first timestamp of the validation window, in the data's unit.
    pub valid_start: i64,
    /// The first timestamp of the test part, in the data's unit.
    pub cutoff: i64,
    /// What was left out, and the users scored.
    pub stats: TimeSplitStats,
    /// Per user, the known items with an interaction before `valid_start` (sorted): what
    /// validation masks. Filled by [`crate::Dataset::set_known`].
    pub known_before_valid: Vec<Vec<u32>>,
    /// Per user, the known items with an interaction before `cutoff` (sorted): what test
    /// masks; what the user took after the cutoff is what is predicted, never masked.
    pub known_before_cutoff: Vec<Vec<u32>>,
    /// The day (days since 1970-01-01, UTC) of the latest interaction before `cutoff` of each
    /// pair of `known_before_cutoff`, entry for entry, when the data set has
    /// [`crate::Dataset::known_days`].
    pub known_days_before_cutoff: Option<Vec<Vec<i32>>>,
}

/// A point in time, in nanoseconds since 1970-01-01 00:00 UTC.
pub(crate) type Instant = i128;

/// Parses `YYYY-MM-DD` (midnight UTC) or an RFC 3339 date and time
/// (`1998-03-01T00:00:00+01:00`, `…Z`, fractional seconds allowed); a date and time without
/// a zone is UTC. `None` when `text` is neither.
pub(crate) fn parse_instant(text: &str) -> Option<Instant> {
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = bytes.get(range)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| std::str::from_utf8(part).ok()?.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    if bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
        return None;
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let midnight = days_from_civil(year, month, day) as i128 * SECONDS_PER_DAY * NANOS_PER_SECOND;
    if bytes.len() == 10 {
        return Some(midnight);
    }
    if !matches!(bytes[10], b'T' | b't' | b' ') || bytes.get(13) != Some(&b':') {
        return None;
    }
    let (hour, minute) = (number(11..13)?, number(14..16)?);
    let mut rest = 16;
    let mut second = 0;
    if bytes.get(16) == Some(&b':') {
        second = number(17..19)?;
        rest = 19;
    }
    let mut nanos: i128 = 0;
    if bytes.get(rest) == Some(&b'.') {
        let digits = bytes[rest + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let fraction: i128 = std::str::from_utf8(&bytes[rest + 1..rest + 1 + digits])
            .ok()?
            .parse()
            .ok()?;
        nanos = fraction * 10i128.pow(9 - digits as u32);
        rest += 1 + digits;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let offset_seconds = zone_offset(&text[rest..])?;
    let seconds = (hour * 3600 + minute * 60 + second - offset_seconds) as i128;
    Some(midnight + seconds * NANOS_PER_SECOND + nanos)
}

/// The offset east of UTC, in seconds, of an RFC 3339 zone (`Z`, `+01:00`, `-05:30`), or 0 for
/// none (UTC).
fn zone_offset(zone: &str) -> Option<i64> {
    match zone.as_bytes() {
        [] | [b'Z'] | [b'z'] => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let value = |a: u8, b: u8| ((a - b'0') * 10 + (b - b'0')) as i64;
            let (hours, minutes) = (value(*h1, *h2), value(*m1, *m2));
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3600 + minutes * 60;
            Some(if *sign == b'-' { -offset } else { offset })
        }
        _ => None,
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date (year, month, day) of a day count since 1970-01-01 (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

/// `YYYY-MM-DD` of an instant, UTC.
pub(crate) fn date(instant: Instant) -> String {
    let days = instant.div_euclid(SECONDS_PER_DAY * NANOS_PER_SECOND);
    let (y, m, d) = civil_from_days(days.clamp(-1 << 40, 1 << 40) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// RFC 3339 (UTC, whole seconds) of an instant.
pub(crate) fn datetime(instant: Instant) -> String {
    let second = instant.div_euclid(NANOS_PER_SECOND);
    let of_day = second.rem_euclid(SECONDS_PER_DAY);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        date(instant),
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

fn nanos_per(unit: TimeUnit) -> i128 {
    match unit {
        TimeUnit::Seconds => NANOS_PER_SECOND,
        TimeUnit::Milliseconds => 1_000_000,
        TimeUnit::Microseconds => 1_000,
        TimeUnit::Nanoseconds => 1,
        TimeUnit::Days => SECONDS_PER_DAY * NANOS_PER_SECOND,
    }
}

/// The first timestamp, in `unit`, at or after `instant`: `t >= to_unit(x)` exactly when the
/// time `t` stands for is at or after `x` (a day-unit timestamp stands for its midnight).
pub(crate) fn to_unit(instant: Instant, unit: TimeUnit) -> i64 {
    let per = nanos_per(unit);
    let ceil = instant.div_euclid(per) + i128::from(instant.rem_euclid(per) != 0);
    ceil.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// The instant a timestamp in `unit` stands for.
pub(crate) fn from_unit(t: i64, unit: TimeUnit) -> Instant {
    t as i128 * nanos_per(unit)
}

/// The parts of a time split, in internal ids, before [`crate::Dataset`] is assembled.
pub(crate) struct TimeParts {
    pub user_ids: IdMap,
    pub item_ids: IdMap,
    pub train: Vec<Vec<u32>>,
    pub valid: Vec<Vec<u32>>,
    pub test: Vec<Vec<u32>>,
    pub split: TimeSplit,
}

/// The held-out interactions of users or items without an id, per part (training,
/// validation, test).
#[derive(Default)]
struct LeftOut {
    users: [HashSet<i64>; 3],
    items: [HashSet<i64>; 3],
    interactions: [usize; 3],
}

impl LeftOut {
    fn stats(self, test: &[Vec<u32>], (valid_start, cutoff): (String, String)) -> TimeSplitStats {
        TimeSplitStats {
            valid_start,
            cutoff,
            test_users: test.iter().filter(|t| !t.is_empty()).count(),
            new_users_valid: self.users[1].len(),
            new_items_valid: self.items[1].len(),
            new_users_test: self.users[2].len(),
            new_items_test: self.items[2].len(),
            interactions_left_out_valid: self.interactions[1],
            interactions_left_out_test: self.interactions[2],
        }
    }
}

/// Splits `data` at `valid_start` and `cutoff` (in the data's unit; `times` are its
/// timestamps; `texts` the two as RFC 3339). Ids go to the users and items with a training
/// interaction; the held-out interactions of others are counted, and a pair repeated within a
/// held-out part is held out once.
pub(crate) fn split_at(
    data: &Interactions,
    times: &[i64],
    (valid_start, cutoff): (i64, i64),
    texts: (String, String),
) -> TimeParts {
    let training: Vec<usize> = (0..data.len())
        .filter(|&i| times[i] < valid_start)
        .collect();
    let user_ids = IdMap::from_codes(training.iter().map(|&i| &data.users[i]), &data.user_keys);
    let item_ids = IdMap::from_codes(training.iter().map(|&i| &data.items[i]), &data.item_keys);
    let n_users = user_ids.len();
    let mut parts: [Vec<Vec<u32>>; 3] = std::array::from_fn(|_| vec![Vec::new(); n_users]);
    let mut held: [HashSet<(u32, u32)>; 3] = Default::default();
    let mut left_out = LeftOut::default();
    for i in data.chronological_order() {
        let part = match times[i] {
            t if t < valid_start => 0,
            t if t < cutoff => 1,
            _ => 2,
        };
        let (user, item) = (data.users[i], data.items[i]);
        match (user_ids.internal(user), item_ids.internal(item)) {
            (Some(u), Some(it)) => {
                if part == 0 || held[part].insert((u, it)) {
                    parts[part][u as usize].push(it);
                }
            }
            (u, it) => {
                left_out.interactions[part] += 1;
                if u.is_none() {
                    left_out.users[part].insert(user);
                }
                if it.is_none() {
                    left_out.items[part].insert(item);
                }
            }
        }
    }
    let [train, valid, test] = parts;
    let stats = left_out.stats(&test, texts);
    TimeParts {
        user_ids,
        item_ids,
        train,
        valid,
        test,
        split: TimeSplit {
            valid_start,
            cutoff,
            stats,
            known_before_valid: Vec::new(),
            known_before_cutoff: Vec::new(),
            known_days_before_cutoff: None,
        },
    }
}

/// Checks that the cutoff lies inside the data (`first` and `last` timestamps, `span` the
/// instants they stand for) and that the window starting at `start` leaves something to train
/// on; `cutoff` is the config's text, then the window's start and the cutoff in the data's
/// unit.
pub(crate) fn check_span(
    cutoff: &str,
    (first, last): (i64, i64),
    (valid_start, cutoff_t): (i64, i64),
    (span, start): ((Instant, Instant), Instant),
) -> Result<()> {
    if cutoff_t <= first || cutoff_t > last {
        return Err(DataError::Invalid(format!(
            "split time: cutoff {cutoff} lies outside the data, which runs from {} to {}: \
             choose a cutoff after its first interaction and not after its last",
            date(span.0),
            date(span.1)
        )));
    }
    if valid_start <= first {
        return Err(DataError::Invalid(format!(
            "split time: the validation window starts at {}, not after the data's first \
             interaction ({}): nothing would be left to train on; shorten the window or move \
             cutoff later",
            datetime(start),
            date(span.0)
        )));
    }
    Ok(())
}

/// Checks that the window holds something to train on, validate and test, naming the dates.
pub(crate) fn check_window(
    parts: &TimeParts,
    (first, last): (Instant, Instant),
    (valid_start, cutoff): (Instant, Instant),
) -> Result<()> {
    let count = |part: &Vec<Vec<u32>>| part.iter().map(Vec::len).sum::<usize>();
    let stats = &parts.split.stats;
    let problem = if count(&parts.valid) == 0 {
        Some((
            "validation",
            format!("between {} and {}", datetime(valid_start), datetime(cutoff)),
            stats.interactions_left_out_valid,
        ))
    } else if count(&parts.test) == 0 {
        Some((
            "test",
            format!("on or after {}", datetime(cutoff)),
            stats.interactions_left_out_test,
        ))
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some((which, when, left_out)) => Err(DataError::Invalid(format!(
            "split time has no {which} interaction to score {when}: {left_out} interactions there \
             are of users or items with no training interaction, and there are no others (the data \
             runs from {} to {}); move cutoff, or widen the validation window",
            date(first),
            date(last)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i128 = SECONDS_PER_DAY * NANOS_PER_SECOND;

    #[test]
    fn dates_and_datetimes_parse_to_utc() {
        // 1998-03-01 is day 10_286 since 1970-01-01 (28 years, 7 of them leap, and 59 days).
        let march = 10_286 * DAY;
        assert_eq!(parse_instant("1998-03-01"), Some(march));
        assert_eq!(
            parse_instant("1998-03-01T00:00:00"),
            Some(march),
            "naive is UTC"
        );
        assert_eq!(parse_instant("1998-03-01 00:00"), Some(march));
        assert_eq!(parse_instant("1998-03-01T00:00:00Z"), Some(march));
        // Midnight at +01:00 is 23:00 UTC the day before.
        assert_eq!(
            parse_instant("1998-03-01T00:00:00+01:00"),
            Some(march - 3600 * NANOS_PER_SECOND)
        );
        assert_eq!(
            parse_instant("1998-03-01T10:30:15.25-05:30"),
            Some(march + (16 * 3600 + 15) * NANOS_PER_SECOND + NANOS_PER_SECOND / 4)
        );
        assert_eq!(
            parse_instant("2000-02-29"),
            Some(11_016 * DAY),
            "a leap day"
        );
        assert_eq!(parse_instant("1970-01-01"), Some(0));
        for bad in [
            "",
            "1998-3-1",
            "1998-02-29",
            "1998-13-01",
            "1998-03-01T24:00:00",
            "1998-03-01T10:00:00+1",
            "1998/03/01",
            "yesterday",
            "1998-03-01T",
            "1998-03-01T10:00:00.",
        ] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
        assert_eq!(date(march), "1998-03-01");
        assert_eq!(
            datetime(march - 3600 * NANOS_PER_SECOND),
            "1998-02-28T23:00:00Z"
        );
        assert_eq!(date(11_016 * DAY), "2000-02-29");
    }

    #[test]
    fn units_round_the_cutoff_up_to_their_first_timestamp_at_or_after_it() {
        let noon = 10_286 * DAY + DAY / 2;
        assert_eq!(to_unit(noon, TimeUnit::Seconds), 888_753_600);
        assert_eq!(to_unit(noon, TimeUnit::Milliseconds), 888_753_600_000);
        assert_eq!(to_unit(noon + 1, TimeUnit::Seconds), 888_753_601);
        // A day stands for its midnight: the first day at or after noon is the next.
        assert_eq!(to_unit(noon, TimeUnit::Days), 10_287);
        assert_eq!(to_unit(10_286 * DAY, TimeUnit::Days), 10_286);
        assert_eq!(from_unit(10_286, TimeUnit::Days), 10_286 * DAY);
        assert_eq!(to_unit(-DAY / 2, TimeUnit::Days), 0);
    }
}
