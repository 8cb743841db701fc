//! Chance: `rand_int`, `rand_float`, `pick` and `shuffle`, with `fastrand`.
//!
//! Not for secrets (fastrand is not a cryptographic generator); for quizzes, fortunes and
//! "pick a reply" bots it is plenty.

use rhai::{Array, Dynamic, Engine, FLOAT, INT};

use super::{error, BatteryResult};

pub fn register(engine: &mut Engine) {
    engine
        .register_fn("rand_int", rand_int)
        .register_fn("rand_float", rand_float)
        .register_fn("pick", pick)
        .register_fn("shuffle", shuffle);
}

/// A whole number from `lo` to `hi`, both included.
pub fn rand_int(lo: INT, hi: INT) -> BatteryResult<INT> {
    if lo > hi {
        return Err(error(
            "rand_int",
            format!("lo ({lo}) is greater than hi ({hi}); call rand_int(lo, hi) with lo <= hi"),
        ));
    }
    Ok(fastrand::i64(lo..=hi))
}

/// A number from 0 (included) to 1 (excluded).
pub fn rand_float() -> FLOAT {
    fastrand::f64()
}

/// One element of `items`, each equally likely. An empty array is an error rather than `()`, so
/// a bot with no replies to choose from says so where the mistake is.
pub fn pick(items: Array) -> BatteryResult<Dynamic> {
    if items.is_empty() {
        return Err(error(
            "pick",
            "the array is empty; there is nothing to pick",
        ));
    }
    Ok(items[fastrand::usize(..items.len())].clone())
}

/// A new array with the elements of `items` in random order; `items` itself is left as it was.
pub fn shuffle(mut items: Array) -> Array {
    fastrand::shuffle(&mut items);
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rand_int_stays_within_both_bounds_and_reaches_them() {
        let seen: std::collections::HashSet<INT> =
            (0..1000).map(|_| rand_int(1, 3).unwrap()).collect();
        assert_eq!(seen, [1, 2, 3].into_iter().collect());
        assert_eq!(rand_int(7, 7).unwrap(), 7);
        assert_eq!(rand_int(INT::MIN, INT::MIN).unwrap(), INT::MIN);
    }

    #[test]
    fn rand_int_refuses_lo_above_hi() {
        let e = rand_int(5, 1).unwrap_err().to_string();
        assert!(e.contains("rand_int: lo (5) is greater than hi (1)"), "{e}");
    }

    #[test]
    fn rand_float_is_in_the_unit_interval() {
        assert!((0..1000)
            .map(|_| rand_float())
            .all(|f| (0.0..1.0).contains(&f)));
    }

    #[test]
    fn pick_returns_an_element_and_refuses_an_empty_array() {
        let items: Array = vec![Dynamic::from_int(1), Dynamic::from_int(2)];
        for _ in 0..100 {
            let got = pick(items.clone()).unwrap().as_int().unwrap();
            assert!(got == 1 || got == 2);
        }
        let e = pick(Array::new()).unwrap_err().to_string();
        assert!(e.contains("pick: the array is empty"), "{e}");
    }

    #[test]
    fn shuffle_keeps_every_element() {
        let items: Array = (0..50).map(Dynamic::from_int).collect();
        let mut got: Vec<INT> = shuffle(items.clone())
            .into_iter()
            .map(|d| d.as_int().unwrap())
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..50).collect::<Vec<INT>>());
    }
}
