//! The page, rendered on the server with maud: every `(value)` is HTML-escaped, so file and
//! database names (which an attacker who can write to the container chooses) are text, never
//! markup. No inline script or style: the CSS and JS are files, which a strict CSP requires.

use maud::{DOCTYPE, Markup, html};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::forecast::human;
use super::view::{ChainLink, DatabaseView, Estate, TailState};
use crate::backup::BackupType;
use crate::migration::Phase;

/// The stylesheet.
pub const CSS: &str = include_str!("assets/dashboard.css");
/// The auto-refresh and cutover script.
pub const JS: &str = include_str!("assets/dashboard.js");
/// The icon (served so the browser's request for one does not fail).
pub const ICON: &str = include_str!("assets/icon.svg");

/// Where the page's links point: the CLI server and the Function App lay them out differently.
#[derive(Debug, Clone)]
pub struct Links {
    /// The page.
    pub page: String,
    /// The JSON endpoint.
    pub json: String,
    /// Where the cutover form posts.
    pub cutover: String,
    /// The folder of `dashboard.css`, `dashboard.js`, `icon.svg` (ends with `/`).
    pub assets: String,
}

impl Links {
    /// The CLI server's layout.
    pub fn local() -> Links {
        Links {
            page: "/".into(),
            json: "/dashboard.json".into(),
            cutover: "/cutover".into(),
            assets: "/assets/".into(),
        }
    }

    /// The Function App's layout (`api/` route prefix): the page and the cutover POST on the
    /// `Dashboard` function, the static files on `DashboardAssets` (anonymous: they hold no data).
    pub fn functions() -> Links {
        Links {
            page: "/api/dashboard".into(),
            json: "/api/dashboard?format=json".into(),
            cutover: "/api/dashboard".into(),
            assets: "/api/dashboard-assets/".into(),
        }
    }
}

fn when(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| t.replace_nanosecond(0).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "—".into())
}

fn phase_badge(phase: Phase) -> Markup {
    // A phase this page does not know yet still shows: the base class is neutral, the word says it.
    html! { span class={ "phase phase-" (phase.as_str()) } { (phase.as_str()) } }
}

fn days(d: Option<f64>) -> String {
    d.map_or_else(|| "—".into(), |d| format!("{d:.1}"))
}

/// The whole page. `csrf` goes into each cutover form's hidden field.
pub fn render(estate: &Estate, links: &Links, csrf: &str) -> String {
    let s = &estate.summary;
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "LRS migrations" }
                link rel="icon" href={ (links.assets) "icon.svg" } type="image/svg+xml";
                link rel="stylesheet" href={ (links.assets) "dashboard.css" };
                script src={ (links.assets) "dashboard.js" } defer {}
                // Without JavaScript the page still refreshes itself, just less smoothly.
                noscript { meta http-equiv="refresh" content="30"; }
            }
            body {
                header {
                    h1 { "LRS migrations" }
                    p class="refresh" { "Updated " time id="generated" { (when(Some(estate.generated_at))) } " " span id="refresh-status" {} " · " a href=(links.json) { "JSON" } }
                }
                main id="main" {
                    section class="summary" aria-label="Summary" {
                        ul {
                            @for c in &s.phases {
                                li { (phase_badge(c.phase)) " " strong { (c.count) } }
                            }
                            @if s.phases.is_empty() { li { "No migrations recorded yet" } }
                        }
                        p {
                            span class={ "stat" @if s.blocked > 0 { " alert" } } { strong { (s.blocked) } " blocked" }
                            @if s.falling_behind > 0 {
                                span class="stat alert" { strong { (s.falling_behind) } " falling behind" }
                            }
                            span class="stat" { "Nearest 30-day limit: "
                                @match &s.nearest_deadline {
                                    Some(d) => { strong { (d.folder) } " in " (format!("{:.1}", d.days_left)) " days (" (when(Some(d.at))) ")" }
                                    None => { "none running" }
                                }
                            }
                            span class="stat" { "SAS expiry: " (s.sas_expiry.map_or_else(|| "managed identity (none)".to_owned(), |t| when(Some(t)))) }
                        }
                    }
                    table class="databases" {
                        thead { tr {
                            th { "Database" } th { "Phase" } th { "Restored" } th { "Restoring now" }
                            th { "Last restore" } th { "Days left" } th { "Tail-log" } th { "Forecast" } th { "Findings" }
                        } }
                        tbody {
                            @for d in &estate.databases { (row(d)) }
                        }
                    }
                    @for d in &estate.databases { (detail(d, links, csrf)) }
                }
                footer { "lrs-autopilot · the page refreshes every few seconds · " a href=(links.page) { "reload" } }
            }
        }
    }
    .into_string()
}

fn row(d: &DatabaseView) -> Markup {
    html! {
        tr id={ "row-" (d.anchor()) } data-phase=(d.phase.as_str()) data-folder=(d.folder) {
            td class="name" { a href={ "#" (d.anchor()) } { (d.folder) } @if d.database_name != d.folder { br; small { "→ " (d.database_name) } } @if let Some(t) = &d.target { br; small class="instance" title=(t.resource_id()) { "on " (t.name) } } }
            td { (phase_badge(d.phase)) }
            td class="num" {
                (d.files_restored) " of " (d.files_planned)
                @if let Some(p) = d.percent { " (" (format!("{p:.0}")) "%)" br; meter min="0" max="100" value=(format!("{p:.0}")) {} }
            }
            td class="file" { (d.restoring_file.as_deref().unwrap_or("—")) }
            td { (when(d.last_restored_at)) @if let Some(f) = &d.last_restored_file { br; small class="file" { (f) } } }
            td class={ "num" @if d.forecast.days_left.is_some_and(|x| x < 5.0) { " alert" } } { (days(d.forecast.days_left)) }
            td { (d.tail.describe()) }
            td class={ @if d.forecast.falling_behind || d.forecast.tail_log_overdue { "alert" } } {
                @if matches!(d.phase, Phase::Blocked | Phase::Failed | Phase::Expired) {
                    "stopped until a person acts"
                } @else {
                    (d.forecast.describe())
                }
                @if let Some(by) = d.forecast.tail_log_by { br; small { "take the tail-log backup by " (when(Some(by))) } }
            }
            td class="findings" {
                // The reason is usually a blocking finding's message: shown once.
                @if let Some(r) = d.reason.as_ref().filter(|r| !d.findings.iter().any(|f| &f.message == *r)) { p class="reason" { (r) } }
                @for f in &d.findings {
                    p class={ "finding sev-" (f.severity.as_str()) } { strong { (f.code.as_str()) } ": " (f.message) }
                }
            }
        }
    }
}

fn set_label(t: BackupType) -> &'static str {
    match t {
        BackupType::Full => "full",
        BackupType::Differential => "diff",
        BackupType::Log => "log",
        _ => "other",
    }
}

fn chain(d: &DatabaseView) -> Markup {
    html! {
        ol class="chain" aria-label="Restore chain" {
            @for link in &d.chain {
                @match link {
                    ChainLink::Set(s) => {
                        li class={ "set " (set_label(s.backup_type))
                            @if s.restored { " restored" } @if s.restoring { " restoring" }
                            @if s.tail { " tail" } @if !s.planned { " unplanned" } } {
                            span class="kind" { (set_label(s.backup_type))
                                @if s.tail { " · tail" }
                                @if s.restored { " · restored" } @else if s.restoring { " · restoring" } @else if !s.planned { " · not reachable" } }
                            @if s.files.len() > 1 {
                                ol class="stripes" { @for f in &s.files { li class="file" { (f) } } }
                            } @else {
                                @for f in &s.files { span class="file" { (f) } }
                            }
                            span class="lsn" { "LSN " (s.first_lsn) " – " (s.last_lsn) }
                        }
                    }
                    ChainLink::Gap { from_lsn, to_lsn, before, after } => {
                        li class="gap" data-before=(before) data-after=(after) {
                            span class="kind" { "gap" }
                            span { "missing LSN " (from_lsn) " – " (to_lsn) }
                            span class="lsn" { "between " (before) " and " (after) }
                        }
                    }
                }
            }
            @if d.chain.is_empty() { li class="empty" { "No readable backup yet" } }
        }
    }
}

fn detail(d: &DatabaseView, links: &Links, csrf: &str) -> Markup {
    html! {
        details class="detail" id=(d.anchor()) data-folder=(d.folder) {
            summary { (d.folder) " " (phase_badge(d.phase)) }
            @if let Some(t) = &d.target { p class="instance" { "Target instance: " code { (t.resource_id()) } } }
            h3 { "Chain" }
            (chain(d))
            @if !d.other_files.is_empty() {
                h3 { "Other files" }
                ul class="other" { @for (name, why) in &d.other_files { li { span class="file" { (name) } ": " (why) } } }
            }
            @if let Some(offer) = &d.cutover {
                h3 { "Cutover" }
                form class="cutover" method="post" action=(links.cutover) data-database=(d.database_name) {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="container" value=(d.container);
                    input type="hidden" name="folder" value=(d.folder);
                    p { "Declare the tail-log backup. The pipeline sends completeRestore only once LRS reports that file restored; after that the database is read-write and no more logs can be restored." }
                    label { "Tail-log backup " select name="lastBackupName" {
                        @for (i, f) in offer.log_backups.iter().enumerate() { option value=(f) selected[i == 0] { (f) } }
                    } }
                    label { "Type the database name " code { (d.database_name) } " to confirm "
                        input type="text" name="confirm" autocomplete="off" required spellcheck="false"; }
                    button type="submit" { "Cut over " (d.database_name) }
                    output class="result" {}
                }
            }
            h3 { "LRS backup sets" }
            @if d.backup_sets.is_empty() { p { "LRS has reported none yet." } } @else {
                table class="sets" {
                    thead { tr { th { "Type" } th { "First stripe" } th { "Stripes" } th { "MB" } th { "Status" } th { "Restore started" } th { "Finished" } } }
                    tbody { @for b in &d.backup_sets { tr {
                        td { (b.kind) } td class="file" { (b.first_stripe_name.as_deref().unwrap_or("—")) }
                        td class="num" { (b.stripes.map_or("—".to_owned(), |n| n.to_string())) }
                        td class="num" { (b.size_mb.map_or("—".to_owned(), |m| format!("{m:.1}"))) }
                        td { (b.status) } td { (when(b.restore_started_at)) } td { (when(b.restore_finished_at)) }
                    } } }
                }
            }
            @if let Some(t) = d.forecast.throughput_mbps {
                p { "Measured throughput " (format!("{t:.1}")) " MB/s"
                    @if let Some(a) = d.forecast.arrival_mbps { "; logs arrive at " (format!("{a:.2}")) " MB/s" }
                    @if let Some(s) = d.forecast.caught_up_in_secs { "; caught up in " (human(s)) } }
            }
            @if let TailState::Recognised { file, source } = &d.tail {
                p { "Tail-log backup " span class="file" { (file) } " recognised by " (format!("{source:?}").to_lowercase()) "." }
            }
            h3 { "Audit trail" }
            table class="audit" {
                tbody { @for a in &d.audit { tr { td { (when(Some(a.at))) } td { (a.event) } } } }
            }
        }
    }
}
