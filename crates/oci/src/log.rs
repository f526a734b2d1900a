//! `--log FILE --log-format json|text`: conmon and containerd's shim read
//! the runtime's last error from this file, as runc writes it:
//! `{"level":"error","msg":"...","time":"2026-12-03T19:04:28Z"}`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::cli::LogFormat;

/// Append `message` as an error to `file` (best effort: the error goes to
/// stderr too, and a log we cannot write must not hide it).
pub fn error(file: &Path, format: LogFormat, message: &str) {
    let time = now_rfc3339();
    let line = match format {
        LogFormat::Json => json!({"level": "error", "msg": message, "time": time}).to_string(),
        LogFormat::Text => format!("{time} error: {message}"),
    };
    let log = OpenOptions::new().create(true).append(true).open(file);
    if let Ok(mut log) = log {
        let _ = writeln!(log, "{line}");
    }
}

/// Now, in UTC, as RFC 3339 (`2026-12-03T19:04:28Z`).
pub fn now_rfc3339() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(seconds)
}

/// Seconds since the epoch as an RFC 3339 UTC time.
fn rfc3339(seconds: u64) -> String {
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    let (hour, minute, second) = (rest / 3600, rest % 3600 / 60, rest % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// Days since 1970-01-01 as a (year, month, day) of the Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_325_868), "2026-12-03T19:24:28Z");
    }

    #[test]
    fn a_json_line_is_what_conmon_reads() {
        let file = std::env::temp_dir().join(format!("pfs-oci-log-{}", std::process::id()));
        error(&file, LogFormat::Json, "container t1 does not exist");
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::remove_file(&file).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["level"], "error");
        assert_eq!(line["msg"], "container t1 does not exist");
        assert!(line["time"].as_str().unwrap().ends_with('Z'));
    }
}
