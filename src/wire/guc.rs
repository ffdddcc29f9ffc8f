//! The registry of configuration parameters (GUCs) a session knows: type,
//! default, range and PostgreSQL's wording for every rejection. Values are
//! kept as their canonical `SHOW` text; typed reads parse that text back.
//!
//! pgvector's parameters carry pgvector's defaults and ranges; the settings
//! drivers send at connect are accepted harmlessly.

use std::sync::OnceLock;

use super::error::PgError;

/// A time unit factor in milliseconds, with its `SHOW` suffix.
const TIME_UNITS: &[(&str, f64)] = &[
    ("us", 0.001),
    ("ms", 1.0),
    ("s", 1000.0),
    ("min", 60_000.0),
    ("h", 3_600_000.0),
    ("d", 86_400_000.0),
];

/// The type of a parameter and its limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GucKind {
    /// An integer in `min..=max`; `millis` when the base unit is ms.
    Int {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
        /// Accepts and shows time units, base unit milliseconds.
        millis: bool,
    },
    /// A floating-point value in `min..=max`.
    Real {
        /// Smallest value.
        min: f64,
        /// Largest value.
        max: f64,
    },
    /// on/off.
    Bool,
    /// One of the listed words.
    Enum(&'static [&'static str]),
    /// One of the listed words (among them `on` and `off`), or a boolean
    /// spelling PostgreSQL accepts for those without listing it: `true`,
    /// `yes`, `1` mean `on`; `false`, `no`, `0` mean `off`.
    EnumOrBool(&'static [&'static str]),
    /// Any text.
    Text,
    /// A client encoding; only UTF8 is supported.
    Encoding,
    /// A DateStyle; only ISO output is supported.
    DateStyle,
}

/// One configuration parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guc {
    /// Name as PostgreSQL spells it (lookups ignore case).
    pub name: &'static str,
    /// Type and limits.
    pub kind: GucKind,
    /// Boot value, canonical.
    pub default: &'static str,
    /// `SHOW ALL` description.
    pub description: &'static str,
    /// Sent to the client in ParameterStatus when it changes.
    pub report: bool,
    /// Cannot be changed by SET.
    pub read_only: bool,
}

const fn guc(
    name: &'static str,
    kind: GucKind,
    default: &'static str,
    description: &'static str,
) -> Guc {
    Guc {
        name,
        kind,
        default,
        description,
        report: false,
        read_only: false,
    }
}

const fn reported(mut g: Guc) -> Guc {
    g.report = true;
    g
}

const fn fixed(mut g: Guc) -> Guc {
    g.read_only = true;
    g
}

const fn int(min: i64, max: i64) -> GucKind {
    GucKind::Int {
        min,
        max,
        millis: false,
    }
}

const MILLIS: GucKind = GucKind::Int {
    min: 0,
    max: i32::MAX as i64,
    millis: true,
};

/// The value pgvshard reports as `server_version`.
pub const SERVER_VERSION: &str = concat!("16.4 (pgvshard ", env!("CARGO_PKG_VERSION"), ")");

/// [`SERVER_VERSION`] as `server_version_num` shows it.
pub const SERVER_VERSION_NUM: &str = "160004";

/// Every known parameter, sorted by name for `SHOW ALL`.
pub static GUCS: &[Guc] = &[
    reported(guc(
        "application_name",
        GucKind::Text,
        "",
        "Sets the application name to be reported in statistics and logs.",
    )),
    reported(guc(
        "client_encoding",
        GucKind::Encoding,
        "UTF8",
        "Sets the client's character set encoding.",
    )),
    guc(
        "client_min_messages",
        GucKind::Enum(&[
            "debug5", "debug4", "debug3", "debug2", "debug1", "log", "notice", "warning", "error",
        ]),
        "notice",
        "Sets the message levels that are sent to the client.",
    ),
    reported(guc(
        "DateStyle",
        GucKind::DateStyle,
        "ISO, MDY",
        "Sets the display format for date and time values.",
    )),
    guc(
        "default_transaction_isolation",
        GucKind::Text,
        "read committed",
        "Sets the transaction isolation level of each new transaction.",
    ),
    guc(
        "default_transaction_read_only",
        GucKind::Bool,
        "off",
        "Sets the default read-only status of new transactions.",
    ),
    // LlamaIndex's PostgreSQL vector store turns it off (SET LOCAL) before
    // a filtered KNN query.
    guc(
        "enable_bitmapscan",
        GucKind::Bool,
        "on",
        "Enables the planner's use of bitmap-scan plans.",
    ),
    guc(
        "enable_indexscan",
        GucKind::Bool,
        "on",
        "Enables the planner's use of index-scan plans.",
    ),
    guc(
        "enable_seqscan",
        GucKind::Bool,
        "on",
        "Enables the planner's use of sequential-scan plans.",
    ),
    guc(
        "extra_float_digits",
        int(-15, 3),
        "1",
        "Sets the number of digits displayed for floating-point values.",
    ),
    guc(
        "hnsw.ef_search",
        int(1, 1000),
        "40",
        "Sets the size of the dynamic candidate list for search",
    ),
    guc(
        "hnsw.iterative_scan",
        GucKind::Enum(&["off", "relaxed_order", "strict_order"]),
        "off",
        "Sets the mode for iterative scans",
    ),
    guc(
        "hnsw.max_scan_tuples",
        int(1, i32::MAX as i64),
        "20000",
        "Sets the max number of tuples to visit for iterative scans",
    ),
    guc(
        "hnsw.scan_mem_multiplier",
        GucKind::Real {
            min: 1.0,
            max: 1000.0,
        },
        "1",
        "Sets the multiple of work_mem to use for iterative scans",
    ),
    guc(
        "idle_in_transaction_session_timeout",
        MILLIS,
        "0",
        "Sets the maximum allowed idle time between queries, when in a transaction.",
    ),
    reported(fixed(guc(
        "in_hot_standby",
        GucKind::Bool,
        "off",
        "Shows whether hot standby is currently active.",
    ))),
    reported(fixed(guc(
        "integer_datetimes",
        GucKind::Bool,
        "on",
        "Shows whether datetimes are integer based.",
    ))),
    reported(guc(
        "IntervalStyle",
        GucKind::Text,
        "postgres",
        "Sets the display format for interval values.",
    )),
    reported(fixed(guc(
        "is_superuser",
        GucKind::Bool,
        "off",
        "Shows whether the current user is a superuser.",
    ))),
    guc(
        "ivfflat.iterative_scan",
        GucKind::Enum(&["off", "relaxed_order"]),
        "off",
        "Sets the mode for iterative scans",
    ),
    guc(
        "ivfflat.max_probes",
        int(1, 32768),
        "32768",
        "Sets the max number of probes for iterative scans",
    ),
    guc(
        "ivfflat.probes",
        int(1, 32768),
        "1",
        "Sets the number of probes",
    ),
    // asyncpg turns it off around its type introspection (inside the
    // client's transaction: an unknown name would abort it).
    guc(
        "jit",
        GucKind::Bool,
        "on",
        "Allow JIT compilation.",
    ),
    guc(
        "lock_timeout",
        MILLIS,
        "0",
        "Sets the maximum allowed duration of any wait for a lock.",
    ),
    guc(
        "maintenance_work_mem",
        GucKind::Text,
        "64MB",
        "Sets the maximum memory to be used for maintenance operations.",
    ),
    fixed(guc(
        "max_identifier_length",
        int(63, 63),
        "63",
        "Shows the maximum identifier length.",
    )),
    guc(
        "max_parallel_maintenance_workers",
        int(0, 1024),
        "2",
        "Sets the maximum number of parallel processes per maintenance operation.",
    ),
    guc(
        "pgvshard.allow_partial_results",
        GucKind::Bool,
        "off",
        "Lets a query answer without the shards that failed, with a NOTICE naming them.",
    ),
    guc(
        "pgvshard.cache",
        GucKind::Bool,
        "on",
        "Lets the proxy answer reads from its result cache (off: always ask the shards).",
    ),
    guc(
        "pgvshard.target_session_attrs",
        GucKind::Enum(&["default", "read-write", "read-only", "prefer-standby", "any"]),
        "default",
        "Where reads go: read-write (the primary), read-only (standbys only), prefer-standby, any node, or default (as replication.read_from says).",
    ),
    guc(
        "search_path",
        GucKind::Text,
        "\"$user\", public",
        "Sets the schema search order for names that are not schema-qualified.",
    ),
    reported(fixed(guc(
        "server_encoding",
        GucKind::Encoding,
        "UTF8",
        "Shows the server (database) character set encoding.",
    ))),
    reported(fixed(guc(
        "server_version",
        GucKind::Text,
        SERVER_VERSION,
        "Shows the server version.",
    ))),
    fixed(guc(
        "server_version_num",
        int(0, i32::MAX as i64),
        SERVER_VERSION_NUM,
        "Shows the server version as an integer.",
    )),
    reported(fixed(guc(
        "session_authorization",
        GucKind::Text,
        "",
        "Sets the session user name (shows the user the client connected as).",
    ))),
    reported(guc(
        "standard_conforming_strings",
        GucKind::Bool,
        "on",
        "Causes '...' strings to treat backslashes literally.",
    )),
    guc(
        "statement_timeout",
        MILLIS,
        "0",
        "Sets the maximum allowed duration of any statement.",
    ),
    guc(
        "synchronous_commit",
        GucKind::EnumOrBool(&["local", "remote_write", "remote_apply", "on", "off"]),
        "on",
        "Sets the current transaction's synchronization level.",
    ),
    reported(guc(
        "TimeZone",
        GucKind::Text,
        "UTC",
        "Sets the time zone for displaying and interpreting time stamps.",
    )),
    fixed(guc(
        "transaction_deferrable",
        GucKind::Bool,
        "off",
        "Whether to defer a read-only serializable transaction until it can be executed with no possible serialization failures.",
    )),
    fixed(guc(
        "transaction_isolation",
        GucKind::Text,
        "read committed",
        "Shows the current transaction's isolation level (each shard is read committed).",
    )),
    fixed(guc(
        "transaction_read_only",
        GucKind::Bool,
        "off",
        "Shows whether the current transaction is read-only.",
    )),
    guc(
        "work_mem",
        GucKind::Text,
        "4MB",
        "Sets the maximum memory to be used for query workspaces.",
    ),
];

/// The parameter called `name` (case-insensitive).
pub fn find(name: &str) -> Option<&'static Guc> {
    GUCS.iter().find(|g| g.name.eq_ignore_ascii_case(name))
}

/// A parameter named in code, found in the registry at its first use:
/// for settings read at every statement, which [`find`] would search for
/// each time.
pub struct Named {
    name: &'static str,
    found: OnceLock<Option<&'static Guc>>,
}

impl Named {
    /// The parameter called `name`.
    pub const fn new(name: &'static str) -> Self {
        Named {
            name,
            found: OnceLock::new(),
        }
    }

    /// Its registry entry (`None` if the registry has no such name).
    pub fn guc(&self) -> Option<&'static Guc> {
        *self.found.get_or_init(|| find(self.name))
    }
}

impl Guc {
    /// Validates `value` and returns its canonical text, or PostgreSQL's
    /// error for it.
    pub fn canonical(&self, value: &str) -> Result<String, PgError> {
        let invalid = || {
            PgError::invalid_parameter_value(format!(
                "invalid value for parameter \"{}\": \"{value}\"",
                self.name
            ))
        };
        match self.kind {
            GucKind::Int { min, max, millis } => {
                let n = if millis {
                    parse_millis(value).ok_or_else(|| {
                        invalid().with_hint(
                            "Valid units for this parameter are \"us\", \"ms\", \"s\", \"min\", \"h\", and \"d\".",
                        )
                    })?
                } else {
                    value.trim().parse::<i64>().map_err(|_| invalid())?
                };
                if !(min..=max).contains(&n) {
                    return Err(PgError::invalid_parameter_value(format!(
                        "{n} is outside the valid range for parameter \"{}\" ({min} .. {max})",
                        self.name
                    )));
                }
                Ok(if millis {
                    show_millis(n)
                } else {
                    n.to_string()
                })
            }
            GucKind::Real { min, max } => {
                let v: f64 = value.trim().parse().map_err(|_| invalid())?;
                if !(min..=max).contains(&v) {
                    return Err(PgError::invalid_parameter_value(format!(
                        "{v} is outside the valid range for parameter \"{}\" ({min} .. {max})",
                        self.name
                    )));
                }
                Ok(v.to_string())
            }
            GucKind::Bool => match parse_bool(value) {
                Some(b) => Ok(if b { "on" } else { "off" }.to_string()),
                None => Err(PgError::invalid_parameter_value(format!(
                    "parameter \"{}\" requires a Boolean value",
                    self.name
                ))),
            },
            GucKind::Enum(options) | GucKind::EnumOrBool(options) => {
                let mut v = value.trim().to_ascii_lowercase();
                if matches!(self.kind, GucKind::EnumOrBool(_)) {
                    match v.as_str() {
                        "true" | "yes" | "1" => v = "on".into(),
                        "false" | "no" | "0" => v = "off".into(),
                        _ => {}
                    }
                }
                match options.iter().find(|o| **o == v) {
                    Some(o) => Ok(o.to_string()),
                    None => {
                        Err(invalid()
                            .with_hint(format!("Available values: {}.", options.join(", "))))
                    }
                }
            }
            GucKind::Text => Ok(value.to_string()),
            GucKind::Encoding => match value.trim().to_ascii_lowercase().as_str() {
                "utf8" | "utf-8" | "unicode" => Ok("UTF8".to_string()),
                _ => Err(invalid().with_detail("pgvshard supports only the UTF8 encoding.")),
            },
            GucKind::DateStyle => {
                let v = value.to_ascii_uppercase();
                if v.contains("ISO") {
                    let order = ["DMY", "YMD"].into_iter().find(|o| v.contains(o));
                    Ok(format!("ISO, {}", order.unwrap_or("MDY")))
                } else {
                    Err(invalid().with_detail("pgvshard supports only ISO date output."))
                }
            }
        }
    }
}

/// PostgreSQL's boolean words and their unique prefixes.
pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    let v = value.trim().to_ascii_lowercase();
    let prefix = |w: &str| !v.is_empty() && w.starts_with(v.as_str());
    match v.as_str() {
        "on" | "1" => Some(true),
        "off" | "0" | "of" => Some(false),
        _ if prefix("true") || prefix("yes") => Some(true),
        _ if prefix("false") || prefix("no") => Some(false),
        _ => None,
    }
}

/// Parses `5000`, `5s`, `1.5 min`, … into milliseconds.
fn parse_millis(value: &str) -> Option<i64> {
    let v = value.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(v.len());
    let number: f64 = v[..split].parse().ok()?;
    let unit = v[split..].trim();
    let factor = if unit.is_empty() {
        1.0
    } else {
        TIME_UNITS.iter().find(|(u, _)| *u == unit)?.1
    };
    let ms = (number * factor).round();
    (ms.abs() < 1e15).then_some(ms as i64)
}

/// Shows milliseconds in the largest unit that divides them exactly, as
/// PostgreSQL does (`5000` → `5s`).
fn show_millis(ms: i64) -> String {
    if ms == 0 {
        return "0".into();
    }
    TIME_UNITS[1..]
        .iter()
        .rev()
        .find(|(_, f)| ms % (*f as i64) == 0)
        .map(|(u, f)| format!("{}{u}", ms / (*f as i64)))
        .unwrap_or_else(|| format!("{ms}ms"))
}

/// Reads a canonical millisecond value back.
pub(crate) fn millis_of(canonical: &str) -> i64 {
    parse_millis(canonical).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, value: &str) -> Result<String, PgError> {
        find(name).unwrap().canonical(value)
    }

    #[test]
    fn registry_is_sorted_and_unique() {
        for w in GUCS.windows(2) {
            assert!(w[0].name.to_ascii_lowercase() < w[1].name.to_ascii_lowercase());
        }
        for g in GUCS {
            assert_eq!(g.canonical(g.default).unwrap(), g.default, "{}", g.name);
        }
    }

    #[test]
    fn pgvector_parameters_validate_like_pgvector() {
        assert_eq!(set("HNSW.EF_SEARCH", " 100 ").unwrap(), "100");
        let e = set("hnsw.ef_search", "1001").unwrap_err();
        assert_eq!(e.code, "22023");
        assert_eq!(
            e.message,
            "1001 is outside the valid range for parameter \"hnsw.ef_search\" (1 .. 1000)"
        );
        let e = set("hnsw.ef_search", "abc").unwrap_err();
        assert_eq!(
            e.message,
            "invalid value for parameter \"hnsw.ef_search\": \"abc\""
        );
        assert_eq!(
            set("hnsw.iterative_scan", "Strict_Order").unwrap(),
            "strict_order"
        );
        let e = set("ivfflat.iterative_scan", "strict_order").unwrap_err();
        assert_eq!(
            e.hint.as_deref(),
            Some("Available values: off, relaxed_order.")
        );
        assert_eq!(set("hnsw.scan_mem_multiplier", "2.5").unwrap(), "2.5");
        assert!(set("hnsw.scan_mem_multiplier", "0.5").is_err());
        assert_eq!(set("ivfflat.max_probes", "32768").unwrap(), "32768");
    }

    #[test]
    fn time_units_and_other_kinds() {
        assert_eq!(set("statement_timeout", "5s").unwrap(), "5s");
        assert_eq!(set("statement_timeout", "5000").unwrap(), "5s");
        assert_eq!(set("statement_timeout", "90000").unwrap(), "90s");
        assert_eq!(set("statement_timeout", "120 min").unwrap(), "2h");
        assert_eq!(set("statement_timeout", "1500").unwrap(), "1500ms");
        assert_eq!(millis_of("2h"), 7_200_000);
        let e = set("statement_timeout", "5 parsecs").unwrap_err();
        assert!(e.hint.unwrap().starts_with("Valid units"));
        assert!(set("statement_timeout", "-1").is_err());
        assert_eq!(set("enable_seqscan", "false").unwrap(), "off");
        assert_eq!(
            set("enable_seqscan", "maybe").unwrap_err().message,
            "parameter \"enable_seqscan\" requires a Boolean value"
        );
        assert_eq!(set("client_encoding", "utf-8").unwrap(), "UTF8");
        assert!(set("client_encoding", "LATIN1").is_err());
        assert_eq!(set("datestyle", "iso, dmy").unwrap(), "ISO, DMY");
        assert!(find("no_such_thing").is_none());
    }
}
