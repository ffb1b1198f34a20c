//! The time-based split (`[split] kind = "time"`) on a hand-made data set whose parts are
//! worked out by hand, and its errors.

use ember_data::{Interactions, Split, TimeSplitStats, TimeUnit};

/// Five users (1–5) and six items (10–15), timestamps in days since 1970-01-01 (day 1 is
/// 1970-01-02). With cutoff day 10 (1970-01-11) and a 3-day window (from day 7):
/// - training (days < 7): user 1 took 10, 11; user 2 10, 12; user 3 11; user 4 13. So users
///   1–4 and items 10–13 get ids; user 5 and items 14, 15 do not.
/// - validation (days 7–9): user 1 took 12 (scored); user 2 took 14 (a new item) and user 5
///   took 10 (a new user), both left out.
/// - test (days ≥ 10): user 1 took 13, 11 (again) and 13 again (held out once); user 2 13;
///   user 3 15 (new item, left out) then 12; user 5 12 (new user, left out); user 4 nothing.
fn toy() -> Interactions {
    let rows: [(i64, i64, i64); 16] = [
        (1, 10, 1),
        (1, 11, 2),
        (1, 12, 8),
        (1, 13, 10),
        (1, 11, 12),
        (1, 13, 14),
        (2, 10, 3),
        (2, 12, 5),
        (2, 14, 9),
        (2, 13, 11),
        (3, 11, 4),
        (3, 15, 11),
        (3, 12, 13),
        (4, 13, 6),
        (5, 10, 8),
        (5, 12, 12),
    ];
    Interactions {
        users: rows.iter().map(|r| r.0).collect(),
        items: rows.iter().map(|r| r.1).collect(),
        ratings: None,
        weights: None,
        timestamps: Some(rows.iter().map(|r| r.2).collect()),
        ..Default::default()
    }
}

fn time(cutoff: &str, valid_days: Option<u32>, valid_cutoff: Option<&str>) -> Split {
    Split::Time {
        cutoff: cutoff.into(),
        valid_days,
        valid_cutoff: valid_cutoff.map(str::to_string),
    }
}

fn error(split: &Split, data: &Interactions, unit: Option<TimeUnit>) -> String {
    split
        .apply_with_time_unit(data, None, unit)
        .unwrap_err()
        .to_string()
}

#[test]
fn the_toy_data_splits_into_the_hand_worked_parts_and_counts_what_is_new() {
    let split = time("1970-01-11", Some(3), None);
    let d = split
        .apply_with_time_unit(&toy(), None, Some(TimeUnit::Days))
        .unwrap();
    // Internal ids follow the external ones: users 1–4 → 0–3, items 10–13 → 0–3.
    assert_eq!(d.num_users(), 4);
    assert_eq!(d.num_items(), 4);
    assert_eq!(d.train, [vec![0, 1], vec![0, 2], vec![1], vec![3]]);
    assert_eq!(d.valid, [vec![2], vec![], vec![], vec![]]);
    assert_eq!(d.test, [vec![3, 1], vec![3], vec![2], vec![]]);
    let stats = d.stats();
    assert_eq!((stats.train, stats.valid, stats.test), (6, 1, 4));
    assert_eq!(
        stats.time_split,
        Some(TimeSplitStats {
            valid_start: "1970-01-08T00:00:00Z".into(),
            cutoff: "1970-01-11T00:00:00Z".into(),
            test_users: 3,
            new_users_valid: 1,
            new_items_valid: 1,
            new_users_test: 1,
            new_items_test: 1,
            interactions_left_out_valid: 2,
            interactions_left_out_test: 2,
        })
    );
    // Validation masks what each user took before the window, test what they took before the
    // cutoff; user 1's repeat of item 11 after the cutoff is a test item all the same.
    assert_eq!(
        d.masked_for_validation(),
        [vec![0, 1], vec![0, 2], vec![1], vec![3]]
    );
    assert_eq!(
        d.masked_for_test(),
        [vec![0, 1, 2], vec![0, 2], vec![1], vec![3]]
    );
    // The same window given by its start date.
    let by_date = time("1970-01-11T00:00:00Z", None, Some("1970-01-08"))
        .apply_with_time_unit(&toy(), None, Some(TimeUnit::Days))
        .unwrap();
    assert_eq!((by_date.train, by_date.test), (d.train, d.test));
}

#[test]
fn known_pairs_mask_only_before_each_bound_and_a_refit_keeps_the_test_mask() {
    // What preprocessing dropped (say, rated low): user 2 took 13 in the window (day 8) and
    // user 3 took 10 after the cutoff (day 12), and user 5's pair has no user id.
    let dropped = Interactions {
        users: vec![2, 3, 5],
        items: vec![13, 10, 11],
        ratings: None,
        weights: None,
        timestamps: Some(vec![8, 12, 2]),
        ..Default::default()
    };
    let data = toy();
    let mut d = time("1970-01-11", Some(3), None)
        .apply_with_time_unit(&data, None, Some(TimeUnit::Days))
        .unwrap();
    d.set_known(&[&data, &dropped], None, Some(TimeUnit::Days));
    assert_eq!(d.known[1], [0, 2, 3]);
    assert_eq!(d.known[2], [0, 1, 2], "the later pair is known");
    let before_cutoff = [vec![0, 1, 2], vec![0, 2, 3], vec![1], vec![3]];
    assert_eq!(d.masked_for_test(), before_cutoff, "13 masked, 10 not");
    assert_eq!(
        d.masked_for_validation(),
        [vec![0, 1], vec![0, 2], vec![1], vec![3]]
    );
    let refit = d.with_validation_in_training();
    assert_eq!(refit.train[0], [0, 1, 2]);
    assert_eq!(refit.masked_for_test(), before_cutoff);
}

#[test]
fn seconds_place_a_cutoff_with_an_offset_to_the_second() {
    // The cutoff is midnight at +01:00, 1998-02-28T23:00Z: user 3's interaction at 23:30 UTC
    // that day is a test one, user 2's at 22:59:59 a validation one.
    let march = 10_286 * 86_400; // 1998-03-01T00:00Z
    let rows: [(i64, i64, i64); 7] = [
        (1, 1, march - 3 * 86_400),
        (2, 1, march - 3 * 86_400),
        (1, 2, march - 2 * 86_400),
        (3, 1, march - 3 * 86_400),
        (2, 2, march - 86_400 + 3_600),
        (2, 3, march - 3_601),
        (3, 2, march - 1_800),
    ];
    let data = Interactions {
        users: rows.iter().map(|r| r.0).collect(),
        items: rows.iter().map(|r| r.1).collect(),
        ratings: None,
        weights: None,
        timestamps: Some(rows.iter().map(|r| r.2).collect()),
        ..Default::default()
    };
    let d = time("1998-03-01T00:00:00+01:00", None, Some("1998-02-28"))
        .apply_with_time_unit(&data, None, Some(TimeUnit::Seconds))
        .unwrap();
    // Users 1–3 → 0–2, items 1, 2 → 0, 1; item 3 was first taken in the window.
    assert_eq!(d.train, [vec![0, 1], vec![0], vec![0]]);
    assert_eq!(d.valid, [vec![], vec![1], vec![]]);
    assert_eq!(d.test, [vec![], vec![], vec![1]]);
    let stats = d.stats().time_split.unwrap();
    assert_eq!(stats.cutoff, "1998-02-28T23:00:00Z");
    assert_eq!(stats.valid_start, "1998-02-28T00:00:00Z");
    assert_eq!(
        (
            stats.new_items_valid,
            stats.interactions_left_out_valid,
            stats.test_users
        ),
        (1, 1, 1)
    );
}

#[test]
fn bad_time_splits_are_refused_naming_the_key_and_the_dates() {
    let days = Some(TimeUnit::Days);
    let data = toy();
    let cases = [
        (
            time("1998-02-30", Some(3), None),
            "split time: cutoff \"1998-02-30\" is not a date (YYYY-MM-DD) or a date and time \
             (RFC 3339, e.g. 1998-03-01T00:00:00+01:00; UTC when it names no offset)",
        ),
        (
            time("1970-01-11", None, Some("1/8/1970")),
            "split time: valid_cutoff \"1/8/1970\" is not a date (YYYY-MM-DD) or a date and \
             time (RFC 3339, e.g. 1998-03-01T00:00:00+01:00; UTC when it names no offset)",
        ),
        (
            time("1970-01-11", Some(3), Some("1970-01-08")),
            "split time: give exactly one of valid_days and valid_cutoff (where the validation \
             window before cutoff starts)",
        ),
        (
            time("1970-01-11", None, None),
            "split time: give exactly one of valid_days and valid_cutoff (where the validation \
             window before cutoff starts)",
        ),
        (
            time("1970-01-11", Some(0), None),
            "split time: valid_days must be at least 1",
        ),
        (
            time("1970-01-11", None, Some("1970-01-12")),
            "split time: valid_cutoff 1970-01-12 must come before cutoff 1970-01-11",
        ),
        (
            time("1971-01-01", Some(3), None),
            "split time: cutoff 1971-01-01 lies outside the data, which runs from 1970-01-02 to \
             1970-01-15: choose a cutoff after its first interaction and not after its last",
        ),
        (
            time("1970-01-02", Some(3), None),
            "split time: cutoff 1970-01-02 lies outside the data, which runs from 1970-01-02 to \
             1970-01-15: choose a cutoff after its first interaction and not after its last",
        ),
        (
            time("1970-01-05", Some(5), None),
            "split time: the validation window starts at 1969-12-31T00:00:00Z, not after the \
             data's first interaction (1970-01-02): nothing would be left to train on; shorten \
             the window or move cutoff later",
        ),
        (
            // The window (day 9 from noon of day 8 rounded up) holds only user 2's new item.
            time("1970-01-11", None, Some("1970-01-09T12:00:00")),
            "split time has no validation interaction to score between 1970-01-09T12:00:00Z \
             and 1970-01-11T00:00:00Z: 1 interactions there are of users or items with no \
             training interaction, and there are no others (the data runs from 1970-01-02 to \
             1970-01-15); move cutoff, or widen the validation window",
        ),
    ];
    for (split, message) in cases {
        assert_eq!(error(&split, &data, days), message, "{split:?}");
    }
    // The last day's only interaction is a new user's: nothing to test.
    let mut late = toy();
    late.users.push(6);
    late.items.push(10);
    late.timestamps.as_mut().unwrap().push(15);
    assert_eq!(
        error(&time("1970-01-16", Some(2), None), &late, days),
        "split time has no test interaction to score on or after 1970-01-16T00:00:00Z: 1 \
         interactions there are of users or items with no training interaction, and there are \
         no others (the data runs from 1970-01-02 to 1970-01-16); move cutoff, or widen the \
         validation window"
    );
    let split = time("1970-01-11", Some(3), None);
    let mut untimed = toy();
    untimed.timestamps = None;
    assert_eq!(
        error(&split, &untimed, None),
        "split time needs each interaction's date, and this source has no timestamps (name the \
         timestamp column in [data])"
    );
    assert_eq!(
        error(&split, &data, None),
        "split time needs each interaction's date, and this source's timestamps are positions \
         in a sequence, not dates (formats sasrec and sequences, synthetic data): use \
         leave_one_out"
    );
}
