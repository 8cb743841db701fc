//! A cron expression as `SCHEDULES` takes it: croner's parser, plus the checks croner leaves
//! out, so a mistake names its field.

use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

/// The fields in order: name, the numbers it takes (day-of-week 7 is Sunday, like 0), and how
/// many values it has (the largest sensible step).
const FIELDS: [(&str, u32, u32, u32); 6] = [
    ("second", 0, 59, 60),
    ("minute", 0, 59, 60),
    ("hour", 0, 23, 24),
    ("day-of-month", 1, 31, 31),
    ("month", 1, 12, 12),
    ("day-of-week", 0, 7, 7),
];

/// Five fields, or six with a leading seconds field; the optional year field croner also
/// accepts is refused so that a seven-field typo is not silently read as a year.
pub(super) fn parse_cron(cron: &str) -> Result<Cron, String> {
    check_fields(cron)?;
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(cron)
        .map_err(|e| e.to_string())
}

/// Two mistakes croner does not name. A number outside its field: croner only says
/// "Component error: Number out of bounds." without saying which. A step larger than the
/// field (`*/61` in minutes), which croner accepts as matching minute 0 only, and which is
/// almost always meant as "every 61 minutes", which cron cannot express.
fn check_fields(cron: &str) -> Result<(), String> {
    let parts: Vec<&str> = cron.split_whitespace().collect();
    // Aliases such as `@daily` have no fields to check; a wrong count is croner's to report.
    let skip = match parts.len() {
        5 => 1,
        6 => 0,
        _ => return Ok(()),
    };
    for (&(name, lo, hi, values), part) in FIELDS.iter().skip(skip).zip(&parts) {
        for item in part.split(',') {
            // `a-b/step`; names (MON, JAN) are croner's.
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => (range, step.parse::<u32>().ok()),
                None => (item, None),
            };
            for number in range.split('-').filter_map(|n| n.parse::<u32>().ok()) {
                if number < lo || number > hi {
                    return Err(format!(
                        "{number} in the {name} field is out of range: it takes {lo} to {hi}"
                    ));
                }
            }
            if let Some(step) = step.filter(|&step| step > values) {
                return Err(format!(
                    "step {step} in the {name} field is larger than its {values} values"
                ));
            }
        }
    }
    Ok(())
}
