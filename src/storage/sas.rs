//! Shared access signatures: read a token's fields, keep it out of every log and error, check the
//! token given to LRS, and sign account SAS tokens for Azurite.
//!
//! A SAS is a bearer secret: whoever holds the URL can read the backups. So the only way a URL is
//! displayed is through [`Redacted`] (no query string), and every error text goes through
//! [`redact_text`]. The LRS check refuses tokens that LRS could misuse or that may expire during a
//! migration (issue 5 §3.9): LRS needs read and list only, an ad hoc token (a stored access policy
//! can be widened later without changing the token), and up to 30 days of validity.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};
use url::Url;

/// How long a SAS given to LRS must stay valid: LRS may run a migration for up to 30 days.
pub const LRS_MIN_VALIDITY_DAYS: i64 = 30;

/// The timer alerts when the LRS SAS expires within this many days.
pub const EXPIRY_ALERT_DAYS: i64 = 3;

/// Azurite's well-known account name (public, documented by Microsoft; not a secret).
pub const DEVSTORE_ACCOUNT: &str = "devstoreaccount1";

/// Azurite's well-known account key (public, documented by Microsoft; not a secret).
pub const DEVSTORE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The SAS version this module signs with (the 2020-12-06+ string-to-sign).
pub const SIGNED_VERSION: &str = "2022-11-02";

/// Displays a URL without its query string, fragment or password: the form for logs and errors.
///
/// Text that does not parse as a URL is cut at its first `?`.
pub struct Redacted<'a>(pub &'a str);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Url::parse(self.0) {
            Ok(url) => f.write_str(strip_query(&url).as_str()),
            Err(_) => {
                let end = self.0.find(['?', '#']).unwrap_or(self.0.len());
                f.write_str(self.0.get(..end).unwrap_or_default())
            }
        }
    }
}

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// A copy of `url` with no query string, fragment or password.
pub fn strip_query(url: &Url) -> Url {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    // Only fails for URLs that cannot have a password, which then have none.
    let _ = url.set_password(None);
    url
}

/// Remove secrets from free text: every configured secret value ([`redact_by_value`]) wherever
/// it appears, the query string of every `http(s)://` URL, and the value of any bare `sig=`
/// parameter. Used on every message that goes into a storage or LRS error.
pub fn redact_text(text: &str) -> String {
    let without_values = strip_secret_values(text);
    let without_queries = strip_url_queries(&without_values);
    redact_sig_values(&without_queries)
}

/// Secret values configured in this process (SAS signatures, in every encoding they travel in).
static SECRET_VALUES: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

/// A secret shorter than this is not registered: it would redact ordinary words.
const MIN_SECRET_CHARS: usize = 8;

/// Registers a configured SAS (a token, or a URL carrying one) so that [`redact_text`] removes
/// its signature by value, whatever text surrounds it: an ARM error that echoes the token, a
/// message that quotes it without `sig=`. The signature is registered as written, decoded and
/// percent-encoded; the whole token too.
pub fn redact_by_value(sas: &str) {
    let Ok(token) = SasToken::parse(sas) else {
        return;
    };
    let sig = token.signature().to_owned();
    let encoded: String = url::form_urlencoded::byte_serialize(sig.as_bytes()).collect();
    let query = match Url::parse(sas.trim()) {
        Ok(url) => url.query().map(str::to_owned),
        Err(_) => Some(sas.trim().trim_start_matches('?').to_owned()),
    };
    let mut forms = vec![sig.clone(), encoded.clone(), encoded.to_ascii_lowercase()];
    forms.extend(query);
    // Some JSON encoders escape '/': cover that form too.
    forms.push(sig.replace('/', "\\/"));
    let Ok(mut values) = SECRET_VALUES.write() else {
        return;
    };
    for form in forms {
        if form.chars().count() >= MIN_SECRET_CHARS && !values.contains(&form) {
            values.push(form);
        }
    }
    // Longest first, so a token is removed whole before its signature alone is looked for.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
}

fn strip_secret_values(text: &str) -> String {
    let Ok(values) = SECRET_VALUES.read() else {
        return text.to_owned();
    };
    let mut out = text.to_owned();
    for value in values.iter() {
        if out.contains(value.as_str()) {
            out = out.replace(value.as_str(), "[redacted]");
        }
    }
    out
}

fn is_url_end(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\'' | '<' | '>' | ')' | ']' | '}' | '`' | ',' | ';'
        )
}

fn strip_url_queries(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    while pos < text.len() {
        let rest_lower = lower.get(pos..).unwrap_or_default();
        let next = [rest_lower.find("http://"), rest_lower.find("https://")]
            .into_iter()
            .flatten()
            .min();
        let Some(found) = next else {
            out.push_str(text.get(pos..).unwrap_or_default());
            break;
        };
        let start = pos + found;
        out.push_str(text.get(pos..start).unwrap_or_default());
        let tail = text.get(start..).unwrap_or_default();
        let len = tail.find(is_url_end).unwrap_or(tail.len());
        let url = tail.get(..len).unwrap_or_default();
        let keep = url.find(['?', '#']).unwrap_or(url.len());
        out.push_str(url.get(..keep).unwrap_or_default());
        pos = start + len;
    }
    out
}

fn redact_sig_values(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    while let Some(found) = lower.get(pos..).and_then(|r| r.find("sig=")) {
        let start = pos + found;
        let boundary = start == 0
            || lower
                .get(..start)
                .and_then(|b| b.chars().next_back())
                .is_some_and(|c| !c.is_ascii_alphanumeric() && c != '_');
        let value_start = start + "sig=".len();
        out.push_str(text.get(pos..value_start).unwrap_or_default());
        if boundary {
            let tail = text.get(value_start..).unwrap_or_default();
            let len = tail
                .find(|c: char| c == '&' || is_url_end(c))
                .unwrap_or(tail.len());
            out.push_str("[redacted]");
            pos = value_start + len;
        } else {
            pos = value_start;
        }
    }
    out.push_str(text.get(pos..).unwrap_or_default());
    out
}

/// Why a text is not a usable SAS token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SasError {
    /// Nothing that looks like `key=value&...`.
    #[error("not a sas token: no query parameters")]
    Empty,
    /// No `sig=`.
    #[error("not a sas token: it has no signature (sig=)")]
    NoSignature,
    /// A start or expiry time that is not ISO 8601 UTC.
    #[error("sas field {field}= is not an iso 8601 utc time: {value:?}")]
    BadTime {
        /// `se` or `st`.
        field: &'static str,
        /// The value (times are not secret).
        value: String,
    },
    /// The signing key is not base64.
    #[error("the account key is not valid base64")]
    BadKey,
}

/// A parsed SAS token. Its `Debug` never shows the signature.
#[derive(Clone, PartialEq, Eq)]
pub struct SasToken {
    fields: Vec<(String, String)>,
    signature: String,
    start: Option<OffsetDateTime>,
    expiry: Option<OffsetDateTime>,
}

impl fmt::Debug for SasToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (k, v) in &self.fields {
            map.entry(k, v);
        }
        map.entry(&"sig", &"[redacted]");
        map.finish()
    }
}

impl SasToken {
    /// Parse a token given as `sv=...&sig=...`, with or without a leading `?`, or as a whole URL
    /// (its query string is taken).
    ///
    /// # Errors
    /// [`SasError`] when there are no parameters, no signature, or a malformed time.
    pub fn parse(input: &str) -> Result<Self, SasError> {
        let input = input.trim();
        let query = if input.starts_with("http://") || input.starts_with("https://") {
            match Url::parse(input) {
                Ok(url) => url.query().unwrap_or_default().to_owned(),
                Err(_) => return Err(SasError::Empty),
            }
        } else {
            input.strip_prefix('?').unwrap_or(input).to_owned()
        };
        let mut fields = Vec::new();
        let mut signature = None;
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if k.is_empty() {
                continue;
            }
            if k == "sig" {
                signature = Some(v.into_owned());
            } else {
                fields.push((k.into_owned(), v.into_owned()));
            }
        }
        if fields.is_empty() && signature.is_none() {
            return Err(SasError::Empty);
        }
        let signature = signature
            .filter(|s| !s.is_empty())
            .ok_or(SasError::NoSignature)?;
        let time_field = |name: &'static str| -> Result<Option<OffsetDateTime>, SasError> {
            match fields.iter().find(|(k, _)| k == name) {
                None => Ok(None),
                Some((_, v)) => parse_sas_time(v)
                    .map(Some)
                    .ok_or_else(|| SasError::BadTime {
                        field: name,
                        value: v.clone(),
                    }),
            }
        };
        let start = time_field("st")?;
        let expiry = time_field("se")?;
        Ok(Self {
            fields,
            signature,
            start,
            expiry,
        })
    }

    /// A field by name (`sp`, `se`, `sv`, ...). The signature is not available this way.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Signed permissions (`sp`), e.g. `rl`.
    pub fn permissions(&self) -> Option<&str> {
        self.get("sp")
    }

    /// Signed expiry (`se`).
    pub fn expiry(&self) -> Option<OffsetDateTime> {
        self.expiry
    }

    /// Signed start (`st`).
    pub fn start(&self) -> Option<OffsetDateTime> {
        self.start
    }

    /// The stored access policy the token refers to (`si`), if any.
    pub fn stored_policy(&self) -> Option<&str> {
        self.get("si")
    }

    /// Whole days from `now` until expiry (negative once expired), or `None` without `se=`.
    pub fn days_until_expiry(&self, now: OffsetDateTime) -> Option<i64> {
        self.expiry.map(|se| (se - now).whole_days())
    }

    /// The signature, for code that must send the token on (it is otherwise never exposed).
    pub fn signature(&self) -> &str {
        &self.signature
    }
}

/// Parse `YYYY-MM-DD`, `YYYY-MM-DDThh:mmZ` or `YYYY-MM-DDThh:mm:ss[.fff]Z`, the forms Azure accepts.
fn parse_sas_time(value: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(value, &Rfc3339) {
        return Some(t.to_offset(UtcOffset::UTC));
    }
    let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]Z");
    if let Ok(t) = PrimitiveDateTime::parse(value, minutes) {
        return Some(t.assume_utc());
    }
    let date = format_description!("[year]-[month]-[day]");
    Date::parse(value, date)
        .ok()
        .map(|d| d.midnight().assume_utc())
}

fn format_sas_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    // Formatting a valid UTC date-time with this description cannot fail.
    t.format(fmt).unwrap_or_default()
}

/// A problem that makes a SAS unfit for LRS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SasProblem {
    /// The text is not a SAS token at all.
    #[error("{0}")]
    Malformed(SasError),
    /// `sp=` grants more than read and list.
    #[error("it grants more than read and list: {extra} (sp={sp}); LRS needs read and list only")]
    ExcessPermissions {
        /// The extra permissions, named.
        extra: String,
        /// The whole `sp` value.
        sp: String,
    },
    /// `sp=` lacks read or list.
    #[error("it lacks {missing} permission (sp={sp}); LRS needs read and list")]
    MissingPermissions {
        /// The missing permissions, named.
        missing: String,
        /// The whole `sp` value (empty if absent).
        sp: String,
    },
    /// `si=`: the token's rights live in a stored access policy.
    #[error(
        "it uses a stored access policy (si={0}); give LRS an ad hoc sas with permissions and expiry in the token"
    )]
    StoredAccessPolicy(String),
    /// No `se=`.
    #[error("it has no expiry (se=)")]
    NoExpiry,
    /// Already expired.
    #[error("it expired at {expiry}")]
    Expired {
        /// `se`, formatted.
        expiry: String,
    },
    /// Expires inside the 30-day window LRS may need.
    #[error(
        "it expires at {expiry}, in {days} days; LRS may need it for {LRS_MIN_VALIDITY_DAYS} days"
    )]
    ExpiresTooSoon {
        /// `se`, formatted.
        expiry: String,
        /// Whole days left.
        days: i64,
    },
}

/// A SAS refused for LRS, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SasRefusal {
    /// What is wrong, in the order checked.
    pub problems: Vec<SasProblem>,
}

impl fmt::Display for SasRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the lrs sas token is refused: ")?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SasRefusal {}

/// A SAS accepted for LRS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LrsSasCheck {
    /// When it expires.
    pub expiry: OffsetDateTime,
    /// Whole days from the check until expiry; the timer alerts at [`EXPIRY_ALERT_DAYS`].
    pub days_until_expiry: i64,
}

fn permission_name(c: char) -> &'static str {
    match c {
        'r' => "read",
        'a' => "add",
        'c' => "create",
        'w' => "write",
        'd' => "delete",
        'x' => "delete version",
        'y' => "permanent delete",
        'l' => "list",
        't' => "tags",
        'f' => "find",
        'm' => "move",
        'e' => "execute",
        'o' => "ownership",
        'p' => "permissions",
        'i' => "set immutability policy",
        'u' => "update",
        _ => "unknown",
    }
}

fn name_permissions(chars: impl Iterator<Item = char>) -> String {
    chars
        .map(|c| match permission_name(c) {
            "unknown" => format!("unknown '{c}'"),
            name => name.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Check the SAS token LRS will be given (issue 5 §3.9). It must grant read and list and nothing
/// more, carry its own expiry (no stored access policy), and stay valid for
/// [`LRS_MIN_VALIDITY_DAYS`] from `now`. The signature is not verified: that is the service's job.
///
/// # Errors
/// [`SasRefusal`] listing every problem found, each named so an operator can fix the token.
pub fn check_for_lrs(token: &str, now: OffsetDateTime) -> Result<LrsSasCheck, SasRefusal> {
    let token = SasToken::parse(token).map_err(|e| SasRefusal {
        problems: vec![SasProblem::Malformed(e)],
    })?;
    let mut problems = Vec::new();
    let sp = token.permissions().unwrap_or_default();
    let mut extra: Vec<char> = sp.chars().filter(|c| !matches!(c, 'r' | 'l')).collect();
    extra.dedup();
    if !extra.is_empty() {
        problems.push(SasProblem::ExcessPermissions {
            extra: name_permissions(extra.into_iter()),
            sp: sp.to_owned(),
        });
    }
    let missing: Vec<char> = ['r', 'l']
        .into_iter()
        .filter(|c| !sp.contains(*c))
        .collect();
    if !missing.is_empty() {
        problems.push(SasProblem::MissingPermissions {
            missing: name_permissions(missing.into_iter()).replace(", ", " and "),
            sp: sp.to_owned(),
        });
    }
    if let Some(si) = token.stored_policy() {
        problems.push(SasProblem::StoredAccessPolicy(si.to_owned()));
    }
    let checked = match token.expiry() {
        None => {
            problems.push(SasProblem::NoExpiry);
            None
        }
        Some(se) if se <= now => {
            problems.push(SasProblem::Expired {
                expiry: format_sas_time(se),
            });
            None
        }
        Some(se) if se - now < Duration::days(LRS_MIN_VALIDITY_DAYS) => {
            problems.push(SasProblem::ExpiresTooSoon {
                expiry: format_sas_time(se),
                days: (se - now).whole_days(),
            });
            None
        }
        Some(se) => Some(LrsSasCheck {
            expiry: se,
            days_until_expiry: (se - now).whole_days(),
        }),
    };
    match checked {
        Some(ok) if problems.is_empty() => Ok(ok),
        _ => Err(SasRefusal { problems }),
    }
}

/// The fields of an account SAS to sign (version 2020-12-06 and later string-to-sign).
#[derive(Debug, Clone)]
pub struct AccountSas {
    /// Storage account name.
    pub account: String,
    /// Signed permissions, e.g. `rwdlacup`.
    pub permissions: String,
    /// Signed services, e.g. `b` (blob).
    pub services: String,
    /// Signed resource types, e.g. `sco` (service, container, object).
    pub resource_types: String,
    /// Signed start, if any.
    pub start: Option<OffsetDateTime>,
    /// Signed expiry.
    pub expiry: OffsetDateTime,
    /// Signed IP or range, if any.
    pub ip: Option<String>,
    /// Signed protocol (`https` or `https,http`), if any.
    pub protocol: Option<String>,
}

impl AccountSas {
    /// An account SAS for Azurite's `devstoreaccount1` granting everything on blobs until `expiry`.
    pub fn devstore_full_access(expiry: OffsetDateTime) -> Self {
        Self {
            account: DEVSTORE_ACCOUNT.to_owned(),
            permissions: "rwdlacup".to_owned(),
            services: "b".to_owned(),
            resource_types: "sco".to_owned(),
            start: None,
            expiry,
            ip: None,
            protocol: None,
        }
    }

    /// Sign with the account key (base64) and return the query string (`sv=...&sig=...`, no `?`).
    ///
    /// # Errors
    /// [`SasError::BadKey`] if the key is not base64.
    pub fn sign(&self, account_key: &str) -> Result<String, SasError> {
        let key = BASE64.decode(account_key).map_err(|_| SasError::BadKey)?;
        let start = self.start.map(format_sas_time).unwrap_or_default();
        let expiry = format_sas_time(self.expiry);
        let ip = self.ip.clone().unwrap_or_default();
        let protocol = self.protocol.clone().unwrap_or_default();
        // Account name, permissions, services, resource types, start, expiry, IP, protocol,
        // version, encryption scope (empty), and a final newline.
        let string_to_sign = [
            self.account.as_str(),
            &self.permissions,
            &self.services,
            &self.resource_types,
            &start,
            &expiry,
            &ip,
            &protocol,
            SIGNED_VERSION,
            "",
            "",
        ]
        .join("\n");
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| SasError::BadKey)?;
        mac.update(string_to_sign.as_bytes());
        let sig = BASE64.encode(mac.finalize().into_bytes());

        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("sv", SIGNED_VERSION);
        query.append_pair("ss", &self.services);
        query.append_pair("srt", &self.resource_types);
        query.append_pair("sp", &self.permissions);
        query.append_pair("se", &expiry);
        if !start.is_empty() {
            query.append_pair("st", &start);
        }
        if !ip.is_empty() {
            query.append_pair("sip", &ip);
        }
        if !protocol.is_empty() {
            query.append_pair("spr", &protocol);
        }
        query.append_pair("sig", &sig);
        Ok(query.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2025-03-01 12:00 UTC);

    fn token(fields: &str) -> String {
        format!("{fields}&sig=c2VjcmV0LXNpZ25hdHVyZQ%3D%3D")
    }

    fn problems(token: &str) -> Vec<SasProblem> {
        match check_for_lrs(token, NOW) {
            Ok(ok) => panic!("expected a refusal, got {ok:?}"),
            Err(refusal) => refusal.problems,
        }
    }

    #[test]
    fn accepts_read_list_token_valid_long_enough() {
        let t = token("sv=2022-11-02&sr=c&sp=rl&se=2025-05-01T00:00:00Z");
        let ok = check_for_lrs(&t, NOW).expect("token is fine");
        assert_eq!(ok.expiry, datetime!(2025-05-01 0:00 UTC));
        assert_eq!(ok.days_until_expiry, 60);
        let lr = token("sp=lr&se=2025-05-01");
        assert!(check_for_lrs(&lr, NOW).is_ok());
        let with_question_mark = format!("?{t}");
        assert!(check_for_lrs(&with_question_mark, NOW).is_ok());
    }

    #[test]
    fn refuses_write_and_delete_permissions() {
        let p = problems(&token("sp=rwdl&se=2025-06-01"));
        assert_eq!(
            p,
            vec![SasProblem::ExcessPermissions {
                extra: "write, delete".into(),
                sp: "rwdl".into()
            }]
        );
        assert!(
            p[0].to_string()
                .contains("grants more than read and list: write, delete")
        );
    }

    #[test]
    fn refuses_missing_list_permission() {
        let p = problems(&token("sp=r&se=2025-06-01"));
        assert_eq!(
            p,
            vec![SasProblem::MissingPermissions {
                missing: "list".into(),
                sp: "r".into()
            }]
        );
    }

    #[test]
    fn refuses_stored_access_policy() {
        let p = problems(&token("sp=rl&se=2025-06-01&si=lrs-policy"));
        assert_eq!(p, vec![SasProblem::StoredAccessPolicy("lrs-policy".into())]);
        assert!(
            p[0].to_string()
                .contains("stored access policy (si=lrs-policy)")
        );
        // A policy-only token has no sp or se of its own: every gap is named.
        let p = problems(&token("sr=c&si=lrs-policy"));
        assert!(p.contains(&SasProblem::StoredAccessPolicy("lrs-policy".into())));
        assert!(p.contains(&SasProblem::NoExpiry));
    }

    #[test]
    fn refuses_token_expiring_within_30_days() {
        let p = problems(&token("sp=rl&se=2025-03-30T12:00:00Z"));
        assert_eq!(
            p,
            vec![SasProblem::ExpiresTooSoon {
                expiry: "2025-03-30T12:00:00Z".into(),
                days: 29
            }]
        );
        assert!(p[0].to_string().contains("in 29 days"));
        // Exactly 30 days is enough.
        assert!(check_for_lrs(&token("sp=rl&se=2025-03-31T12:00:00Z"), NOW).is_ok());
    }

    #[test]
    fn refuses_expired_token() {
        let p = problems(&token("sp=rl&se=2025-02-01"));
        assert_eq!(
            p,
            vec![SasProblem::Expired {
                expiry: "2025-02-01T00:00:00Z".into()
            }]
        );
    }

    #[test]
    fn refuses_token_without_expiry() {
        assert_eq!(problems(&token("sp=rl")), vec![SasProblem::NoExpiry]);
    }

    #[test]
    fn refuses_text_that_is_not_a_sas() {
        assert_eq!(problems(""), vec![SasProblem::Malformed(SasError::Empty)]);
        assert_eq!(
            problems("sp=rl&se=2030-01-01"),
            vec![SasProblem::Malformed(SasError::NoSignature)]
        );
        assert_eq!(
            problems(&token("sp=rl&se=next-tuesday")),
            vec![SasProblem::Malformed(SasError::BadTime {
                field: "se",
                value: "next-tuesday".into()
            })]
        );
    }

    #[test]
    fn refusal_names_every_problem_and_never_the_signature() {
        let refusal =
            check_for_lrs(&token("sp=racwdl&si=p&se=2025-03-02"), NOW).expect_err("bad token");
        assert_eq!(refusal.problems.len(), 3);
        let text = refusal.to_string();
        assert!(
            text.starts_with("the lrs sas token is refused: it grants more than read and list")
        );
        assert!(text.contains("; it uses a stored access policy"));
        assert!(text.contains("; it expires at 2025-03-02T00:00:00Z, in 0 days"));
        assert!(!text.contains("c2VjcmV0"));
        assert!(!format!("{refusal:?}").contains("c2VjcmV0"));
    }

    #[test]
    fn parses_fields_from_url_and_hides_signature() {
        let url = format!(
            "https://acct.blob.core.windows.net/sqlfiles/db1?{}",
            token("sv=2022-11-02&sp=rl&st=2025-03-01T10:30Z&se=2025-04-01")
        );
        let t = SasToken::parse(&url).expect("parses");
        assert_eq!(t.permissions(), Some("rl"));
        assert_eq!(t.get("sv"), Some("2022-11-02"));
        assert_eq!(t.get("sig"), None);
        assert_eq!(t.signature(), "c2VjcmV0LXNpZ25hdHVyZQ==");
        assert_eq!(t.start(), Some(datetime!(2025-03-01 10:30 UTC)));
        assert_eq!(t.days_until_expiry(NOW), Some(30));
        assert_eq!(t.stored_policy(), None);
        let debug = format!("{t:?}");
        assert!(debug.contains("\"sp\": \"rl\""));
        assert!(!debug.contains("c2VjcmV0"));
    }

    #[test]
    fn parses_fractional_seconds_and_offsets() {
        let t = SasToken::parse(&token("se=2025-04-01T00:00:00.0000000Z")).expect("parses");
        assert_eq!(t.expiry(), Some(datetime!(2025-04-01 0:00 UTC)));
        let t = SasToken::parse(&token("se=2025-04-01T02:00:00%2B02:00")).expect("parses");
        assert_eq!(t.expiry(), Some(datetime!(2025-04-01 0:00 UTC)));
    }

    #[test]
    fn redacted_url_has_no_query() {
        let url = "https://acct.blob.core.windows.net/sqlfiles/db1?sv=1&sp=rl&sig=abc%2B";
        assert_eq!(
            Redacted(url).to_string(),
            "https://acct.blob.core.windows.net/sqlfiles/db1"
        );
        assert_eq!(
            format!("{:?}", Redacted(url)),
            "\"https://acct.blob.core.windows.net/sqlfiles/db1\""
        );
        assert_eq!(Redacted("not a url?sig=abc").to_string(), "not a url");
        let with_password = "https://user:pw@host/c?sig=x";
        assert_eq!(Redacted(with_password).to_string(), "https://user@host/c");
    }

    #[test]
    fn redact_text_strips_queries_and_signatures() {
        let text = "error sending request for url (http://127.0.0.1:10000/devstoreaccount1/c?sv=1&sig=SECRET1): \
                    connection refused; token sv=2&sp=rl&sig=SECRET2&se=x; HTTPS://H/x?SIG=SECRET3 \"sig=SECRET4\"";
        let out = redact_text(text);
        for secret in ["SECRET1", "SECRET2", "SECRET3", "SECRET4"] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
        assert!(out.contains("(http://127.0.0.1:10000/devstoreaccount1/c)"));
        assert!(out.contains("sig=[redacted]&se=x"));
        // A word merely ending in "sig" is not a signature.
        assert_eq!(redact_text("config=1 xsig=2"), "config=1 xsig=2");
        // Non-ASCII text survives intact.
        assert_eq!(redact_text("é http://h/ü?sig=1 ü"), "é http://h/ü ü");
    }

    #[test]
    fn signs_account_sas_like_the_reference_implementation() {
        // The string-to-sign and HMAC of Azure's account SAS; cross-checked against Azurite in
        // tests/storage_azurite.rs, which accepts only correctly signed tokens.
        let sas = AccountSas {
            account: DEVSTORE_ACCOUNT.into(),
            permissions: "rl".into(),
            services: "b".into(),
            resource_types: "co".into(),
            start: None,
            expiry: datetime!(2030-01-01 0:00 UTC),
            ip: None,
            protocol: None,
        };
        let query = sas.sign(DEVSTORE_KEY).expect("signs");
        assert!(
            query.starts_with("sv=2022-11-02&ss=b&srt=co&sp=rl&se=2030-01-01T00%3A00%3A00Z&sig=")
        );
        let parsed = SasToken::parse(&query).expect("parses");
        let key = BASE64.decode(DEVSTORE_KEY).expect("key");
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("hmac");
        mac.update(b"devstoreaccount1\nrl\nb\nco\n\n2030-01-01T00:00:00Z\n\n\n2022-11-02\n\n");
        assert_eq!(
            parsed.signature(),
            BASE64.encode(mac.finalize().into_bytes())
        );
        assert_eq!(sas.sign("not base64!"), Err(SasError::BadKey));
    }

    #[test]
    fn configured_signatures_are_redacted_by_value_in_any_text() {
        let token =
            "sv=2022-11-02&sp=rl&se=2030-01-01T00:00:00Z&sig=Q29uZmlndXJlZFNlY3JldA%2B%2F%3D";
        redact_by_value(token);
        let sig = "Q29uZmlndXJlZFNlY3JldA+/=";
        for text in [
            format!("the token {sig} is not valid"),
            "token 'Q29uZmlndXJlZFNlY3JldA%2B%2F%3D' refused".to_owned(),
            format!("{{\"storageContainerSasToken\":\"{token}\"}}"),
            format!("signature={sig};"),
        ] {
            let out = redact_text(&text);
            assert!(!out.contains("Q29uZmlndXJlZFNlY3JldA"), "{out}");
            assert!(out.contains("[redacted]"), "{out}");
        }
        assert_eq!(redact_text("nothing secret"), "nothing secret");
    }
}
