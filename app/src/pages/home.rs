//! The start page: what Timebox is, and a live preview of a grant's real window
//! computed in the browser by the same function the server stores.

use crate::domain::{
    format_human, GrantDuration, PortalSession, SessionDuration, WindowInputs, Windows,
};
use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use leptos::prelude::*;

/// Portal-session choices offered by the preview (Identity Center allows 15 min–90 days).
const PORTAL_CHOICES: [(&str, i64); 9] = [
    ("15 minutes", 15 * 60),
    ("1 hour", 3600),
    ("4 hours", 4 * 3600),
    ("8 hours (default)", 8 * 3600),
    ("12 hours", 12 * 3600),
    ("1 day", 86_400),
    ("7 days", 7 * 86_400),
    ("30 days", 30 * 86_400),
    ("90 days", 90 * 86_400),
];

/// The preview's outcome: either the windows or the first wrong field and why.
#[derive(Clone, PartialEq)]
enum Preview {
    Ok(Windows),
    Invalid {
        field: &'static str,
        message: String,
    },
}

fn preview(start: &str, duration: &str, portal_secs: &str, ps_session: &str) -> Preview {
    let invalid = |field, message: String| Preview::Invalid { field, message };
    let start = match NaiveTime::parse_from_str(start.trim(), "%H:%M") {
        Ok(t) => t,
        Err(_) => return invalid("start", "write the start as HH:MM, e.g. 09:00".into()),
    };
    let duration = match GrantDuration::parse(duration, None) {
        Ok(d) => d,
        Err(e) => return invalid("duration", e.message),
    };
    let portal = match portal_secs.parse::<i64>().map(PortalSession::from_seconds) {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return invalid("portal", e),
        Err(_) => return invalid("portal", "choose a portal session length".into()),
    };
    let ps = match SessionDuration::parse(ps_session) {
        Ok(s) => s,
        Err(e) => return invalid("ps_session", e.to_string()),
    };
    // A fixed example day: the preview is about lengths, not today's date, so it
    // needs no clock and renders identically on the server and in the browser.
    let day = Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).single();
    let Some(activated_at) = day.map(|d| d + (start - NaiveTime::MIN)) else {
        return invalid("start", "that start time cannot be used".into());
    };
    match Windows::compute(&WindowInputs {
        activated_at,
        revoked_at: None,
        planned_end: activated_at + duration.as_duration(),
        portal_session: portal,
        permission_set_session: ps,
        observed: None,
        sessions_closed_at: None,
    }) {
        Ok(w) => Preview::Ok(w),
        Err(e) => invalid("duration", e.to_string()),
    }
}

fn clock(t: DateTime<Utc>, day0: DateTime<Utc>) -> String {
    let days = (t.date_naive() - day0.date_naive()).num_days();
    match days {
        0 => t.format("%H:%M").to_string(),
        1 => format!("{} the next day", t.format("%H:%M")),
        n => format!("{} {n} days later", t.format("%H:%M")),
    }
}

#[component]
pub fn HomePage() -> impl IntoView {
    let (start, set_start) = signal("09:00".to_string());
    let (duration, set_duration) = signal("1h".to_string());
    let (portal, set_portal) = signal((8 * 3600).to_string());
    let (ps_session, set_ps_session) = signal("PT1H".to_string());

    let result = Memo::new(move |_| {
        preview(
            &start.get(),
            &duration.get(),
            &portal.get(),
            &ps_session.get(),
        )
    });
    let error_for = move |field: &'static str| {
        move || match result.get() {
            Preview::Invalid { field: f, message } if f == field => Some(message),
            _ => None,
        }
    };
    let invalid = move |field: &'static str| {
        move || matches!(result.get(), Preview::Invalid { field: f, .. } if f == field).to_string()
    };

    view! {
        <super::YourAccess/>
        <section class="intro">
            <h1>"Timebox"</h1>
            <p>
                "Ask for one permission set in one AWS account for a bounded time, with a reason. "
                "Approvers decide; Timebox creates the IAM Identity Center assignment when the "
                "grant starts, removes it when it ends, and keeps every grant's "
                <strong>"real access window"</strong> " with its evidence for the auditors."
            </p>
        </section>

        <section class="preview" aria-labelledby="preview-title">
            <h2 id="preview-title">"How long does a grant really last?"</h2>
            <p class="hint">
                "Removing an assignment does not end the sessions it already gave: a portal "
                "session opened just before the end keeps listing the permission set, and one "
                "click then gives a full permission-set session. Try it:"
            </p>
            <form class="preview-form" on:submit=|ev| ev.prevent_default()>
                <div class="field">
                    <label for="start">"Grant starts at"</label>
                    <input id="start" name="start" type="time" required
                        prop:value=start
                        aria-invalid=invalid("start")
                        aria-describedby="start-error"
                        on:input=move |ev| set_start.set(event_target_value(&ev))/>
                    <p class="error" id="start-error" role="alert">{error_for("start")}</p>
                </div>
                <div class="field">
                    <label for="duration">"Granted for"</label>
                    <input id="duration" name="duration" type="text" inputmode="text" required
                        placeholder="1h, 90m, 1h30m"
                        prop:value=duration
                        aria-invalid=invalid("duration")
                        aria-describedby="duration-error"
                        on:input=move |ev| set_duration.set(event_target_value(&ev))/>
                    <p class="error" id="duration-error" role="alert">{error_for("duration")}</p>
                </div>
                <div class="field">
                    <label for="portal">"Access-portal session"</label>
                    <select id="portal" name="portal"
                        on:change=move |ev| set_portal.set(event_target_value(&ev))>
                        {PORTAL_CHOICES
                            .iter()
                            .map(|(label, secs)| {
                                let v = secs.to_string();
                                let selected = *secs == 8 * 3600;
                                view! { <option value=v selected=selected>{*label}</option> }
                            })
                            .collect_view()}
                    </select>
                    <p class="error" role="alert">{error_for("portal")}</p>
                </div>
                <div class="field">
                    <label for="ps_session">"Permission-set session (ISO-8601)"</label>
                    <input id="ps_session" name="ps_session" type="text" required
                        placeholder="PT1H … PT12H"
                        prop:value=ps_session
                        aria-invalid=invalid("ps_session")
                        aria-describedby="ps-error"
                        on:input=move |ev| set_ps_session.set(event_target_value(&ev))/>
                    <p class="error" id="ps-error" role="alert">{error_for("ps_session")}</p>
                </div>
            </form>

            <div class="preview-result" aria-live="polite" id="preview-result">
                {move || match result.get() {
                    Preview::Ok(w) => {
                        let day0 = w.granted.start;
                        let total = w.real.length().num_seconds().max(1) as f64;
                        let granted_pct = 100.0 * w.granted.length().num_seconds() as f64 / total;
                        view! {
                            <p class="summary">
                                "Access until " <strong data-testid="granted-end">{clock(w.granted.end, day0)}</strong>
                                "; sessions opened before then can last until "
                                <strong data-testid="real-end">{clock(w.real.end, day0)}</strong>
                                " because the portal session is "
                                {format_human(w.portal_session.as_duration())}
                                " and this permission set's session is "
                                {format_human(w.permission_set_session.as_duration())} "."
                            </p>
                            <div class="bar" role="img"
                                aria-label=format!("granted {} of a real window of {}",
                                    format_human(w.granted.length()), format_human(w.real.length()))>
                                <span class="granted" style=format!("width: {granted_pct:.2}%")>
                                    "granted " {format_human(w.granted.length())}
                                </span>
                                <span class="tail">"tail " {format_human(w.tail.length())}</span>
                            </div>
                            <p class="total">
                                "Real window: " <strong data-testid="real-length">{format_human(w.real.length())}</strong>
                            </p>
                        }
                            .into_any()
                    }
                    Preview::Invalid { .. } => view! {
                        <p class="summary muted">"Fix the highlighted field to see the window."</p>
                    }
                        .into_any(),
                }}
            </div>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_shows_the_aws_example() {
        let Preview::Ok(w) = preview("09:00", "1h", "28800", "PT1H") else {
            panic!("valid input");
        };
        assert_eq!(format_human(w.real.length()), "10h");
        assert_eq!(clock(w.real.end, w.granted.start), "19:00");
    }

    #[test]
    fn preview_names_the_wrong_field() {
        for (args, field) in [
            (("9am", "1h", "28800", "PT1H"), "start"),
            (("09:00", "0", "28800", "PT1H"), "duration"),
            (("09:00", "1h", "60", "PT1H"), "portal"),
            (("09:00", "1h", "28800", "1 hour"), "ps_session"),
        ] {
            match preview(args.0, args.1, args.2, args.3) {
                Preview::Invalid { field: f, .. } => assert_eq!(f, field),
                Preview::Ok(_) => panic!("{args:?} should be refused"),
            }
        }
    }
}
