//! The grant's timeline as an SVG picture: the request, each approval, the granted
//! window, the real window with its tail shaded, the revocation, and observed
//! activity when evidence exists. Server-rendered, so it reads without JavaScript.

use crate::api::ApprovalView;
use crate::domain::{format_human, Grant, Windows};
use chrono::{DateTime, Utc};
use leptos::prelude::*;

const W: f64 = 800.0;
const LEFT: f64 = 110.0;
const RIGHT: f64 = 20.0;

/// Observed activity to draw (from the evidence, when collected).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActivityMarks {
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
    pub events: Vec<DateTime<Utc>>,
}

/// The picture's horizontal scale.
#[derive(Debug, Clone, Copy)]
struct Scale {
    t0: DateTime<Utc>,
    span: f64,
}

impl Scale {
    fn x(&self, t: DateTime<Utc>) -> f64 {
        let secs = (t - self.t0).num_milliseconds() as f64 / 1000.0;
        LEFT + (secs / self.span).clamp(0.0, 1.0) * (W - LEFT - RIGHT)
    }
}

fn hhmm(t: DateTime<Utc>) -> String {
    t.format("%H:%M").to_string()
}

#[component]
pub fn Timeline(
    grant: Grant,
    approvals: Vec<ApprovalView>,
    windows: Option<Windows>,
    #[prop(optional)] activity: ActivityMarks,
    /// The granted spans of the other grants of the same access (its extensions, or
    /// the grant it extends), drawn on the granted row.
    #[prop(optional)]
    linked: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    now: DateTime<Utc>,
) -> impl IntoView {
    let mut end = grant.created_at + chrono::Duration::minutes(grant.request.duration.minutes());
    for t in [
        grant.ends_at,
        grant.revoked_at,
        grant.real_end,
        activity.last,
        windows.as_ref().map(|w| w.real.end),
        windows.as_ref().map(|w| w.worst_case_end),
    ]
    .into_iter()
    .flatten()
    .chain(linked.iter().map(|l| l.1))
    {
        end = end.max(t);
    }
    if grant.activated_at.is_none() {
        end = end.max(now);
    }
    let t0 = grant.created_at;
    let span = ((end - t0).num_milliseconds() as f64 / 1000.0).max(60.0);
    let s = Scale { t0, span };
    let label = format!(
        "Timeline of grant {}: requested {}{}{}",
        grant.id,
        grant.created_at.format("%Y-%m-%d %H:%M UTC"),
        windows.as_ref().map_or(String::new(), |w| format!(
            "; granted {} to {}; real window until {}",
            w.granted.start.format("%H:%M"),
            w.granted.end.format("%H:%M"),
            w.real.end.format("%Y-%m-%d %H:%M UTC")
        )),
        grant.revoked_at.map_or(String::new(), |r| format!(
            "; revoked {}",
            r.format("%H:%M UTC")
        ))
    );
    let row = |y: f64, name: &'static str| {
        view! { <text x="4" y=y + 14.0 class="tl-row">{name}</text> }
    };
    let request_marks = {
        let mut marks = vec![(grant.created_at, "requested".to_owned(), "tl-request")];
        for a in &approvals {
            marks.push((
                a.decided_at,
                format!("{} {}", a.decision, a.approver),
                if a.decision == "approve" {
                    "tl-approve"
                } else {
                    "tl-deny"
                },
            ));
        }
        marks
            .into_iter()
            .map(|(t, what, class)| {
                let x = s.x(t);
                view! {
                    <g class=class>
                        <circle cx=x cy="20" r="5"><title>{format!("{what} at {}", t.format("%Y-%m-%d %H:%M:%S UTC"))}</title></circle>
                    </g>
                }
            })
            .collect_view()
    };
    let windows_view = windows.map(|w| {
        let gx = s.x(w.granted.start);
        let gw = (s.x(w.granted.end) - gx).max(2.0);
        let tx = s.x(w.tail.start);
        let tw = (s.x(w.tail.end) - tx).max(2.0);
        let rx = s.x(w.real.start);
        let rw = (s.x(w.real.end) - rx).max(2.0);
        let granted_label = format!("granted {}", format_human(w.granted.length()));
        let tail_label = match w.sessions_closed_at {
            Some(closed) => format!(
                "tail {}: sessions closed at {}",
                format_human(w.tail.length()),
                hhmm(closed)
            ),
            None => format!(
                "tail {} (portal {} + session {})",
                format_human(w.tail.length()),
                format_human(w.portal_session.as_duration()),
                format_human(w.permission_set_session.as_duration())
            ),
        };
        // With the deny, the worst case it avoided, outlined after the real end.
        let avoided = w.sessions_closed_at.map(|_| {
            let ax = s.x(w.real.end);
            let aw = (s.x(w.worst_case_end) - ax).max(2.0);
            view! {
                <rect x=ax y="72" width=aw height="22" class="tl-avoided" rx="3" data-testid="timeline-avoided">
                    <title>{format!("without the deny, sessions could have lived until {} UTC", w.worst_case_end.format("%Y-%m-%d %H:%M"))}</title>
                </rect>
                <text x=s.x(w.worst_case_end) y="88" text-anchor="end" class="tl-avoided-label">{format!("without the deny: until {}", hhmm(w.worst_case_end))}</text>
            }
        });
        view! {
            <rect x=gx y="40" width=gw height="22" class="tl-granted" rx="3">
                <title>{format!("granted window {} – {} UTC", w.granted.start.format("%Y-%m-%d %H:%M"), w.granted.end.format("%H:%M"))}</title>
            </rect>
            <text x=gx + 4.0 y="56" class="tl-on-bar">{granted_label}</text>
            <rect x=rx y="72" width=rw height="22" class="tl-real" rx="3"/>
            <rect x=tx y="72" width=tw height="22" fill="url(#tl-hatch)" class="tl-tail" rx="3">
                <title>{format!("tail: sessions may live until {} UTC", w.tail.end.format("%Y-%m-%d %H:%M"))}</title>
            </rect>
            <text x=tx + 4.0 y="88" class="tl-on-tail">{tail_label}</text>
            {avoided}
            <text x=s.x(w.real.end) y="108" text-anchor="end" class="tl-time">{format!("real end {}", hhmm(w.real.end))}</text>
        }
    });
    let linked_view = linked
        .iter()
        .map(|(from, to)| {
            let x = s.x(*from);
            let w = (s.x(*to) - x).max(2.0);
            view! {
                <rect x=x y="44" width=w height="14" class="tl-linked" rx="3" data-testid="timeline-linked">
                    <title>{format!("the same access, extended: {} – {} UTC", from.format("%Y-%m-%d %H:%M"), to.format("%H:%M"))}</title>
                </rect>
            }
        })
        .collect_view();
    let revoked = grant.revoked_at.map(|r| {
        let x = s.x(r);
        view! {
            <line x1=x x2=x y1="30" y2="100" class="tl-revoked"/>
            <text x=x + 3.0 y="38" class="tl-time">{format!("revoked {}", hhmm(r))}</text>
        }
    });
    let observed = match (activity.first, activity.last) {
        (Some(f), Some(l)) => {
            let fx = s.x(f);
            let w = (s.x(l) - fx).max(2.0);
            let ticks = activity
                .events
                .iter()
                .map(|t| {
                    let x = s.x(*t);
                    view! { <line x1=x x2=x y1="116" y2="136" class="tl-event"/> }
                })
                .collect_view();
            Some(view! {
                <rect x=fx y="118" width=w height="16" class="tl-observed" rx="3">
                    <title>{format!("observed activity {} – {} UTC", f.format("%H:%M"), l.format("%H:%M"))}</title>
                </rect>
                {ticks}
            })
        }
        _ => None,
    };
    let title = label.clone();
    view! {
        <figure class="timeline">
            <svg viewBox=format!("0 0 {W} 150") role="img" aria-label=label data-testid="timeline"
                preserveAspectRatio="xMinYMin meet">
                <title>{title}</title>
                <defs>
                    <pattern id="tl-hatch" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
                        <rect width="8" height="8" class="tl-hatch-bg"/>
                        <line x1="0" y1="0" x2="0" y2="8" class="tl-hatch-line"/>
                    </pattern>
                </defs>
                {row(6.0, "request")}
                {row(40.0, "granted")}
                {row(72.0, "real window")}
                {row(116.0, "activity")}
                <line x1=LEFT x2=W - RIGHT y1="20" y2="20" class="tl-axis"/>
                {request_marks}
                {linked_view}
                {windows_view}
                {revoked}
                {observed}
                <text x=LEFT y="148" class="tl-time">{format!("{} UTC", grant.created_at.format("%Y-%m-%d %H:%M"))}</text>
                <text x=W - RIGHT y="148" text-anchor="end" class="tl-time">{format!("{} UTC", end.format("%Y-%m-%d %H:%M"))}</text>
            </svg>
            <figcaption class="muted">
                "Green: granted (assignment in place); outlined: the same access under a linked grant (an extension). Hatched: the tail, when sessions opened before the end can still be used. "
                "Dashed: the worst case a deny avoided, once the sessions were closed. Blue: activity seen in CloudTrail."
            </figcaption>
        </figure>
    }
}
